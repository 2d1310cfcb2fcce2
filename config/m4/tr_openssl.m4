# tr_openssl.m4: OpenSSL 3 libcrypto (RAND_bytes, EVP digests, MACs, AEAD).
#
# pkg-config `libcrypto >= 3.0` first; with --with-openssl=DIR, DIR/include
# and DIR/lib; without either, the compiler's default paths.  OPENSSL_CFLAGS
# / OPENSSL_LIBS given by the user override both.  Substitutes
# OPENSSL_CFLAGS and OPENSSL_LIBS; sets tr_openssl_version for the summary
# and adds libcrypto to TR_PC_REQUIRES_PRIVATE (or its libs to
# TR_PC_LIBS_PRIVATE).
AC_DEFUN([TR_CHECK_OPENSSL], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_ARG_WITH([openssl],
    [AS_HELP_STRING([--with-openssl=DIR], [OpenSSL 3 installation prefix (DIR/include, DIR/lib)])])
AS_CASE([$with_openssl],
    [no], [AC_MSG_ERROR([taskray needs OpenSSL; --without-openssl is not supported])],
    [yes|""], [PKG_CHECK_MODULES([OPENSSL], [libcrypto >= 3.0], [tr_openssl_pc=yes],
                   [tr_openssl_pc=no; OPENSSL_LIBS=${OPENSSL_LIBS:--lcrypto}])],
    [tr_openssl_pc=no
     tr_openssl_libdir=$with_openssl/lib
     test -d "$tr_openssl_libdir" || tr_openssl_libdir=$with_openssl/lib64
     OPENSSL_CFLAGS="-I$with_openssl/include"; OPENSSL_LIBS="-L$tr_openssl_libdir -lcrypto"])

tr_openssl_save_CPPFLAGS=$CPPFLAGS; tr_openssl_save_LIBS=$LIBS
CPPFLAGS="$CPPFLAGS $OPENSSL_CFLAGS"; LIBS="$OPENSSL_LIBS $LIBS"
AC_MSG_CHECKING([for OpenSSL 3 libcrypto])
AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <openssl/evp.h>
#include <openssl/rand.h>
#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error OpenSSL too old
#endif]], [[unsigned char b[16]; EVP_MD_CTX *c = EVP_MD_CTX_new(); EVP_MD_CTX_free(c);
            return RAND_bytes(b, sizeof b) != 1;]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([OpenSSL 3 libcrypto not found (OPENSSL_CFLAGS="$OPENSSL_CFLAGS" OPENSSL_LIBS="$OPENSSL_LIBS").
  On Debian: apt-get install libssl-dev; on a cluster: module load openssl;
  or pass --with-openssl=DIR or OPENSSL_CFLAGS/OPENSSL_LIBS.])])
AC_COMPUTE_INT([tr_openssl_major], [OPENSSL_VERSION_MAJOR], [[#include <openssl/opensslv.h>]])
AC_COMPUTE_INT([tr_openssl_minor], [OPENSSL_VERSION_MINOR], [[#include <openssl/opensslv.h>]])
AC_COMPUTE_INT([tr_openssl_patch], [OPENSSL_VERSION_PATCH], [[#include <openssl/opensslv.h>]])
tr_openssl_version="$tr_openssl_major.$tr_openssl_minor.$tr_openssl_patch"
CPPFLAGS=$tr_openssl_save_CPPFLAGS; LIBS=$tr_openssl_save_LIBS

AS_IF([test "x$tr_openssl_pc" = xyes && $PKG_CONFIG --exists libcrypto],
    [TR_PC_REQUIRES_PRIVATE="$TR_PC_REQUIRES_PRIVATE libcrypto"],
    [TR_PC_LIBS_PRIVATE="$TR_PC_LIBS_PRIVATE $OPENSSL_LIBS"])
])
