# Third-party libraries, all from Debian 12 packages (scripts/install-deps.sh).
# Their headers are SYSTEM so their warnings never reach ours.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS filesystem)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(CURL REQUIRED)
# registries.conf (precache/registries_conf_toml.cpp); Debian builds it as a shared library.
find_package(tomlplusplus 3.3 REQUIRED)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(OSTREE REQUIRED IMPORTED_TARGET ostree-1)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
# gzip inflate for seed tarballs, ~4x zlib (formats/archive.cpp).
pkg_check_modules(ISAL REQUIRED IMPORTED_TARGET libisal)
find_package(OpenSSL REQUIRED)   # sha256 of seed blobs
