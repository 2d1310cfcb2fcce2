# tr_ucx.m4: UCX, the ucp layer (active messages, ucp_get, ucp_mem_map).
#
# pkg-config `ucx` first; with --with-ucx=DIR, DIR/include and DIR/lib;
# without either, the compiler's default paths.  UCX_CFLAGS / UCX_LIBS given
# by the user override both.  Needs UCP API 1.10 or newer (the nbx calls).
# Substitutes UCX_CFLAGS and UCX_LIBS; sets tr_ucx_version for the summary
# and adds ucx to TR_PC_REQUIRES_PRIVATE (or its libs to TR_PC_LIBS_PRIVATE).
AC_DEFUN([TR_CHECK_UCX], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_ARG_WITH([ucx],
    [AS_HELP_STRING([--with-ucx=DIR], [UCX installation prefix (DIR/include, DIR/lib)])])
AS_CASE([$with_ucx],
    [no], [AC_MSG_ERROR([taskray needs UCX; --without-ucx is not supported])],
    [yes|""], [PKG_CHECK_MODULES([UCX], [ucx], [tr_ucx_pc=yes],
                   [tr_ucx_pc=no; UCX_LIBS=${UCX_LIBS:--lucp -lucs}])],
    [tr_ucx_pc=no
     tr_ucx_libdir=$with_ucx/lib
     test -d "$tr_ucx_libdir" || tr_ucx_libdir=$with_ucx/lib64
     UCX_CFLAGS="-I$with_ucx/include"; UCX_LIBS="-L$tr_ucx_libdir -lucp -lucs"])

tr_ucx_save_CPPFLAGS=$CPPFLAGS; tr_ucx_save_LIBS=$LIBS
CPPFLAGS="$CPPFLAGS $UCX_CFLAGS"; LIBS="$UCX_LIBS $LIBS"
AC_MSG_CHECKING([for UCX ucp 1.10 or newer])
AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <ucp/api/ucp.h>
#if UCP_API_VERSION < UCP_VERSION(1, 10)
#error UCX too old
#endif]], [[ucp_context_h ctx; ucp_params_t p = { 0 }; (void)ucp_init(&p, NULL, &ctx);]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([UCX (ucp) 1.10 or newer not found (UCX_CFLAGS="$UCX_CFLAGS" UCX_LIBS="$UCX_LIBS").
  On Debian: apt-get install libucx-dev; on a cluster: module load ucx;
  or pass --with-ucx=DIR or UCX_CFLAGS/UCX_LIBS.])])
AC_COMPUTE_INT([tr_ucx_major], [UCP_API_MAJOR], [[#include <ucp/api/ucp_version.h>]])
AC_COMPUTE_INT([tr_ucx_minor], [UCP_API_MINOR], [[#include <ucp/api/ucp_version.h>]])
tr_ucx_version="$tr_ucx_major.$tr_ucx_minor"
CPPFLAGS=$tr_ucx_save_CPPFLAGS; LIBS=$tr_ucx_save_LIBS

AS_IF([test "x$tr_ucx_pc" = xyes && $PKG_CONFIG --exists ucx],
    [TR_PC_REQUIRES_PRIVATE="$TR_PC_REQUIRES_PRIVATE ucx"],
    [TR_PC_LIBS_PRIVATE="$TR_PC_LIBS_PRIVATE $UCX_LIBS"])
])
