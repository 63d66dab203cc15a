# Helpers that give every lpi target the same language level and warnings,
# through target properties (no global flags).
#
# LPI_SANITIZE (cache, default empty: none) instruments every lpi target with
# clang's or GCC's sanitizers, for ci/sanitize.sh:
#   address,undefined   AddressSanitizer (with LeakSanitizer) and UBSan
#   thread              ThreadSanitizer
# (any comma-separated list that -fsanitize= takes, but address and thread
# exclude each other; empty or OFF: none). UBSan errors do not recover, so a
# report fails the test. Third-party libraries (libtorch, Open MPI, HDF5,
# Boost, GoogleTest) are not instrumented: ci/sanitize.sh runs libtorch's
# pools single-threaded under TSan, and docs/RELIABILITY.md ("Sanitizers")
# says what is suppressed in them and why.
set(LPI_SANITIZE "" CACHE STRING
    "Sanitizers for every lpi target, as -fsanitize= takes them: address,undefined or thread")
if(LPI_SANITIZE STREQUAL "OFF")
  set(LPI_SANITIZE "" CACHE STRING "" FORCE)
endif()
if(LPI_SANITIZE)
  string(REPLACE "," ";" _lpi_sanitizers "${LPI_SANITIZE}")
  if("address" IN_LIST _lpi_sanitizers AND "thread" IN_LIST _lpi_sanitizers)
    message(FATAL_ERROR "LPI_SANITIZE=${LPI_SANITIZE}: AddressSanitizer and ThreadSanitizer "
                        "cannot share a build; configure one build folder for each "
                        "(ci/sanitize.sh does)")
  endif()
  if(LPI_FUZZ)
    message(FATAL_ERROR "LPI_SANITIZE=${LPI_SANITIZE} and LPI_FUZZ=ON: the fuzz build chooses "
                        "its own sanitizers (ASan and UBSan); set one of them off")
  endif()
  set(LPI_SANITIZE_FLAGS -fsanitize=${LPI_SANITIZE} -fno-omit-frame-pointer)
  if("undefined" IN_LIST _lpi_sanitizers)
    list(APPEND LPI_SANITIZE_FLAGS -fno-sanitize-recover=undefined)
  endif()
  # Line tables are enough for symbolised reports. ASan and UBSan compile at
  # -O0, twice as fast as at -O1 (an instrumented -O1 build spends most of its
  # time optimising ASan's checks), hiding no UB behind an optimisation; TSan
  # keeps -O1, which saves less compile time there and runs its threads twice
  # as fast (test_reduction).
  set(_lpi_lines $<IF:$<CXX_COMPILER_ID:Clang>,-gline-tables-only,-g1>)
  set(LPI_SANITIZE_CODEGEN -O1 ${_lpi_lines})
  if("address" IN_LIST _lpi_sanitizers)
    set(LPI_SANITIZE_CODEGEN -O0 ${_lpi_lines})
    # libstdc++'s bounds checks (operator[], front(), back() ...): ASan sees
    # only reads past an allocation, not past size() within the capacity.
    list(APPEND LPI_SANITIZE_CODEGEN -D_GLIBCXX_ASSERTIONS)
  endif()
  message(STATUS "lpi-sweep: sanitizers ${LPI_SANITIZE} on every lpi target")
endif()

function(lpi_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_17)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF POSITION_INDEPENDENT_CODE ON)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(LPI_SANITIZE)
    target_compile_options(${target} PRIVATE ${LPI_SANITIZE_FLAGS} ${LPI_SANITIZE_CODEGEN})
    # PUBLIC: a static library hands the runtime on to whatever links it.
    target_link_options(${target} PUBLIC ${LPI_SANITIZE_FLAGS})
  endif()
endfunction()

# lpi_sanitize_pch(TARGET HEADER) or lpi_sanitize_pch(TARGET REUSE_FROM OTHER):
# in a sanitizer build, TARGET's sources share one precompiled HEADER (the
# engine's <torch/torch.h>: parsing and instantiating it is most of each
# libtorch file's 20 s), or OTHER's; this keeps the two sanitizer builds of
# ci/sanitize.sh within their time. A source with compile options of its own
# (the AVX2 kernel) cannot use a header precompiled without them and is
# compiled as usual. Normal builds are left as they are.
function(lpi_sanitize_pch target)
  if(NOT LPI_SANITIZE)
    return()
  endif()
  if(ARGV1 STREQUAL "REUSE_FROM")
    target_precompile_headers(${target} REUSE_FROM ${ARGV2})
  else()
    target_precompile_headers(${target} PRIVATE ${ARGV1})
  endif()
  get_target_property(dir ${target} SOURCE_DIR)
  get_target_property(sources ${target} SOURCES)
  foreach(source ${sources})
    get_source_file_property(options ${dir}/${source} TARGET_DIRECTORY ${target} COMPILE_OPTIONS)
    if(options)
      set_source_files_properties(${dir}/${source} TARGET_DIRECTORY ${target}
                                  PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
endfunction()
