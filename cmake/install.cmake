# Installation (GNUInstallDirs): headers, liblenet.so / liblenet.a, the CMake
# package (imported targets lenet::lenet, the shared library, and
# lenet::lenet_static), lenet.pc, the CLI; and the Debian packages (cpack -G DEB).
include(CMakePackageConfigHelpers)

install(DIRECTORY include/lenet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h")
install(FILES ${PROJECT_BINARY_DIR}/include/lenet/version.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/lenet
        COMPONENT dev)

foreach(target ${LENET_INSTALL_TARGETS})
  if(target STREQUAL "lenet_cli")
    install(TARGETS lenet_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
  elseif(target STREQUAL "lenet_shared")
    install(TARGETS lenet_shared EXPORT lenetTargets
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
  else()
    install(TARGETS ${target} EXPORT lenetTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
  endif()
endforeach()

set(LENET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/lenet)
install(EXPORT lenetTargets NAMESPACE lenet:: DESTINATION ${LENET_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(cmake/lenetConfig.cmake.in ${PROJECT_BINARY_DIR}/lenetConfig.cmake
                              INSTALL_DESTINATION ${LENET_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/lenetConfigVersion.cmake COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/lenetConfig.cmake ${PROJECT_BINARY_DIR}/lenetConfigVersion.cmake
        DESTINATION ${LENET_CMAKE_DIR} COMPONENT dev)

# pkg-config: `pkg-config --cflags --libs lenet` links the shared library;
# --static adds what liblenet.a needs.
set(LENET_PC_IMAGE_REQUIRES "")
if(LENET_HAVE_LIBPNG)
  list(APPEND LENET_PC_IMAGE_REQUIRES libpng)
endif()
if(LENET_HAVE_LIBJPEG)
  list(APPEND LENET_PC_IMAGE_REQUIRES libjpeg)
endif()
list(JOIN LENET_PC_IMAGE_REQUIRES ", " LENET_PC_IMAGE_REQUIRES)
if(LENET_CORE_ONLY)
  set(LENET_PC_REQUIRES_PRIVATE "${LENET_PC_IMAGE_REQUIRES}")
  set(LENET_PC_LIBS_PRIVATE "-pthread")
else()
  set(LENET_PC_REQUIRES_PRIVATE "libpng, libjpeg, zlib, plplot, protobuf")
  if(LENET_MPI)
    string(APPEND LENET_PC_REQUIRES_PRIVATE ", ompi-c")
  endif()
  set(LENET_PC_LIBS_PRIVATE "-lonnx -lonnx_proto -pthread")
endif()
# The prefix relative to the .pc file's folder: the same file serves
# `cmake --install --prefix P` and the .deb (installed under /usr).
file(RELATIVE_PATH LENET_PC_TO_PREFIX /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
configure_file(cmake/lenet.pc.in ${PROJECT_BINARY_DIR}/lenet.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/lenet.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# ---- Debian packages: cpack -G DEB in the build folder ----
# liblenet<major> (the shared library and the CLI) and liblenet-dev (headers,
# liblenet.a, CMake and pkg-config files). Runtime dependencies come from
# dpkg-shlibdeps (dpkg-dev); the -dev package's from what lenetConfig.cmake finds.
set(CPACK_PACKAGE_NAME lenet)
set(CPACK_PACKAGE_VENDOR "lenet.cpp")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "lenet.cpp maintainers <lenet@localhost>")
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME liblenet${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "lenet.cpp: the shared library liblenet.so.${PROJECT_VERSION_MAJOR} and the lenet command line")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME liblenet-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_COMPONENT_DEV_DESCRIPTION "lenet.cpp: headers (C and C++), liblenet.a, CMake package and pkg-config file")
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
# What lenetConfig.cmake and `pkg-config --static` look for (the runtime
# package, = this version, comes from CPACK_COMPONENT_DEV_DEPENDS).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libonnx-dev, libprotobuf-dev, zlib1g-dev, libplplot-dev, libpng-dev, libjpeg62-turbo-dev, pkg-config")
if(LENET_MPI)
  string(APPEND CPACK_DEBIAN_DEV_PACKAGE_DEPENDS ", libopenmpi-dev")
endif()
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
include(CPack)
