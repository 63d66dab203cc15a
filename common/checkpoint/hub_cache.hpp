// The HuggingFace hub cache as huggingface_hub writes it (`huggingface-cli
// download --revision R`, deploy/fetch-revisions.py):
//   CACHE/models--ORG--NAME/refs/R          the commit hash of revision R
//   CACHE/models--ORG--NAME/snapshots/HASH/ the revision's files, each a
//                                           relative symlink into ../../blobs/
// A revision resolves to its snapshot folder, which is then read as any
// model folder. Problems are CheckpointError naming the file.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace lpi::checkpoint {

// CACHE/models--ORG--NAME for the repository id "ORG/NAME" (or "NAME").
// Throws CheckpointError for anything else (no "..", one '/' at most).
std::filesystem::path hub_repo_folder(const std::filesystem::path& cache, const std::string& repo);

// The revisions of a repository folder: the files under refs/, by name
// ("a/b" for a branch a/b, stored as refs/a/b). Throws when there is no refs/.
std::vector<std::string> hub_revisions(const std::filesystem::path& repo_folder);

// repo_folder/snapshots/HASH for the HASH in refs/REVISION. Throws naming the
// ref file when it is not there, holds no commit hash, or names a snapshot
// that is missing.
std::filesystem::path hub_snapshot(const std::filesystem::path& repo_folder,
                                   const std::string& revision);

// What a model folder lacks for the engine to read it, one sentence each
// naming the file: a symlink whose target is missing (a blob not downloaded,
// or removed), no config.json, no weights (model.safetensors, or
// model.safetensors.index.json and every shard it names). Empty: complete.
std::vector<std::string> missing_model_files(const std::filesystem::path& folder);

}  // namespace lpi::checkpoint
