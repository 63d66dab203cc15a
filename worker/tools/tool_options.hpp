// Small option parsers shared by the worker-side tools (dtype, device, lists).
#pragma once

#include <torch/torch.h>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpi::tools {

inline torch::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "f32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  throw std::invalid_argument("--dtype '" + name + "': expected float32 or bfloat16");
}

inline torch::Device parse_device(const std::string& name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(name);
  } catch (const std::exception&) {
    throw std::invalid_argument("--device '" + name + "': expected cpu, cuda or cuda:N");
  }
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw std::invalid_argument("--device '" + name +
                                "': this libtorch has no CUDA device available");
  }
  return device;
}

inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace lpi::tools
