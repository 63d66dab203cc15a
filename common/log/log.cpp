#include "common/log/log.hpp"

#include <boost/log/attributes/constant.hpp>
#include <boost/log/attributes/mutable_constant.hpp>
#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/support/date_time.hpp>
#include <boost/log/utility/setup/common_attributes.hpp>
#include <boost/log/utility/setup/console.hpp>
#include <iostream>

namespace lpi::log {
namespace bl = boost::log;
namespace expr = boost::log::expressions;

void init_logging(int rank, bool verbose) {
  bl::add_common_attributes();
  bl::core::get()->add_global_attribute("Rank", bl::attributes::constant<int>(rank));
  bl::add_console_log(
      std::clog, bl::keywords::auto_flush = true,
      bl::keywords::format =
          (expr::stream
           << expr::format_date_time<boost::posix_time::ptime>("TimeStamp", "%Y-%m-%d %H:%M:%S.%f")
           << " [rank " << expr::attr<int>("Rank") << "]"
           << expr::if_(expr::has_attr<int32_t>(
                  "Unit"))[expr::stream << " [unit " << expr::attr<int32_t>("Unit") << "]"]
           << " " << bl::trivial::severity << ": " << expr::smessage));
  bl::core::get()->set_filter(bl::trivial::severity >=
                              (verbose ? bl::trivial::debug : bl::trivial::info));
}

UnitScope::UnitScope(int32_t unit) {
  bl::core::get()->add_thread_attribute("Unit", bl::attributes::constant<int32_t>(unit));
}

UnitScope::~UnitScope() {
  auto attrs = bl::core::get()->get_thread_attributes();
  attrs.erase("Unit");
  bl::core::get()->set_thread_attributes(attrs);
}

}  // namespace lpi::log
