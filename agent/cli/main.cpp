// lcactl: the client of lifecycle-agent, with oc/kubectl habits (agent/cli/app.hpp).
#include <iostream>

#include "agent/cli/app.hpp"

int main(int argc, char** argv) {
  lca::cli::Lcactl lcactl;
  return lcactl.Main(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
