// lpi-store-schema: prints the layout tables of docs/STORE.md ("Sweep
// store" and "Ablation datasets") from the schema table, for pasting into
// the doc; tests/store checks that the doc holds exactly these.
#include <cstdio>

#include "common/store/sweep_schema.hpp"

int main() {
  std::printf("%s\n%s", lpi::store::schema::markdown(false).c_str(),
              lpi::store::schema::markdown(true).c_str());
  return 0;
}
