# Warnings travel through one INTERFACE target that every lca target links.
add_library(lca_warnings INTERFACE)
target_compile_options(lca_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wsuggest-override
  -Wimplicit-fallthrough)
if(LCA_WERROR)
  target_compile_options(lca_warnings INTERFACE -Werror)
endif()
