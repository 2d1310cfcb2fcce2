# tr_hwloc.m4: hwloc 2 (topology, binding, NUMA-local memory, GPUs).
#
# pkg-config `hwloc >= 2.0` first; with --with-hwloc=DIR, DIR/include and
# DIR/lib; without either, the compiler's default paths.  HWLOC_CFLAGS /
# HWLOC_LIBS given by the user override both.  Substitutes HWLOC_CFLAGS and
# HWLOC_LIBS; sets tr_hwloc_version for the summary and adds hwloc to
# TR_PC_REQUIRES_PRIVATE (or its libs to TR_PC_LIBS_PRIVATE).
AC_DEFUN([TR_CHECK_HWLOC], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_ARG_WITH([hwloc],
    [AS_HELP_STRING([--with-hwloc=DIR], [hwloc 2 installation prefix (DIR/include, DIR/lib)])])
AS_CASE([$with_hwloc],
    [no], [AC_MSG_ERROR([taskray needs hwloc; --without-hwloc is not supported])],
    [yes|""], [PKG_CHECK_MODULES([HWLOC], [hwloc >= 2.0], [tr_hwloc_pc=yes],
                   [tr_hwloc_pc=no; HWLOC_LIBS=${HWLOC_LIBS:--lhwloc}])],
    [tr_hwloc_pc=no
     tr_hwloc_libdir=$with_hwloc/lib
     test -d "$tr_hwloc_libdir" || tr_hwloc_libdir=$with_hwloc/lib64
     HWLOC_CFLAGS="-I$with_hwloc/include"; HWLOC_LIBS="-L$tr_hwloc_libdir -lhwloc"])

tr_hwloc_save_CPPFLAGS=$CPPFLAGS; tr_hwloc_save_LIBS=$LIBS
CPPFLAGS="$CPPFLAGS $HWLOC_CFLAGS"; LIBS="$HWLOC_LIBS $LIBS"
AC_MSG_CHECKING([for hwloc 2])
AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <hwloc.h>
#if HWLOC_API_VERSION < 0x00020000
#error hwloc too old
#endif]], [[hwloc_topology_t t; if (hwloc_topology_init(&t) == 0) hwloc_topology_destroy(t);]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([hwloc 2 not found (HWLOC_CFLAGS="$HWLOC_CFLAGS" HWLOC_LIBS="$HWLOC_LIBS").
  On Debian: apt-get install libhwloc-dev; on a cluster: module load hwloc;
  or pass --with-hwloc=DIR or HWLOC_CFLAGS/HWLOC_LIBS.])])
AC_COMPUTE_INT([tr_hwloc_major], [HWLOC_VERSION_MAJOR], [[#include <hwloc.h>]], [tr_hwloc_major=])
AC_COMPUTE_INT([tr_hwloc_minor], [HWLOC_VERSION_MINOR], [[#include <hwloc.h>]], [tr_hwloc_minor=])
AC_COMPUTE_INT([tr_hwloc_release], [HWLOC_VERSION_RELEASE], [[#include <hwloc.h>]], [tr_hwloc_release=])
AS_IF([test -n "$tr_hwloc_major"],
    [tr_hwloc_version="$tr_hwloc_major.$tr_hwloc_minor.$tr_hwloc_release"],
    [tr_hwloc_version="2.x"])
CPPFLAGS=$tr_hwloc_save_CPPFLAGS; LIBS=$tr_hwloc_save_LIBS

AS_IF([test "x$tr_hwloc_pc" = xyes && $PKG_CONFIG --exists hwloc],
    [TR_PC_REQUIRES_PRIVATE="$TR_PC_REQUIRES_PRIVATE hwloc"],
    [TR_PC_LIBS_PRIVATE="$TR_PC_LIBS_PRIVATE $HWLOC_LIBS"])
])
