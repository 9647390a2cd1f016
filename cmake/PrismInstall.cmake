# Installs libprism, the public headers and an exported CMake package:
#   find_package(Prism REQUIRED)  target_link_libraries(app PRIVATE Prism::prism)
include(CMakePackageConfigHelpers)
set(PRISM_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Prism)

set_target_properties(prism PROPERTIES INSTALL_RPATH "$ORIGIN")
install(TARGETS prism EXPORT PrismTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/prism DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT PrismTargets NAMESPACE Prism:: DESTINATION ${PRISM_CMAKE_DIR})
install(PROGRAMS launch/prism-run DESTINATION ${CMAKE_INSTALL_BINDIR} OPTIONAL)

configure_package_config_file(cmake/PrismConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/PrismConfig.cmake INSTALL_DESTINATION ${PRISM_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/PrismConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/PrismConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/PrismConfigVersion.cmake
        DESTINATION ${PRISM_CMAKE_DIR})
