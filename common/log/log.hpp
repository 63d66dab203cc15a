// Logging for the sweep (Boost.Log): one line per record on stderr,
//   2026-11-25 14:30:01.123 [rank 2] [unit 17] info: message
// with the MPI rank in every record and the unit being worked on when there
// is one (UnitScope). Call init_logging() once per process.
#pragma once

#include <boost/log/sources/global_logger_storage.hpp>
#include <boost/log/sources/record_ostream.hpp>
#include <boost/log/sources/severity_logger.hpp>
#include <boost/log/trivial.hpp>

#include <cstdint>

namespace lpi::log {

using Severity = boost::log::trivial::severity_level;

BOOST_LOG_INLINE_GLOBAL_LOGGER_DEFAULT(logger, boost::log::sources::severity_logger_mt<Severity>)

// `verbose` shows debug records too.
void init_logging(int rank, bool verbose = false);

// While alive, records of this thread carry "[unit N]".
class UnitScope {
 public:
  explicit UnitScope(int32_t unit);
  ~UnitScope();
  UnitScope(const UnitScope&) = delete;
  UnitScope& operator=(const UnitScope&) = delete;
};

}  // namespace lpi::log

#define LPI_LOG(level) BOOST_LOG_SEV(::lpi::log::logger::get(), ::lpi::log::Severity::level)
