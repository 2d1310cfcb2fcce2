# tr_check.m4: libcheck, for the unit and integration tests.  Optional.
#
# pkg-config `check >= 0.11` first; with --with-check=DIR, DIR/include and
# DIR/lib; otherwise the compiler's default paths.  --without-check turns
# the tests off.  When check is missing the build goes on and `make check`
# says that the tests are disabled.  Substitutes CHECK_CFLAGS and
# CHECK_LIBS, defines the automake conditional HAVE_CHECK and sets
# tr_have_check (yes/no) for the summary.
AC_DEFUN([TR_CHECK_CHECK], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_ARG_WITH([check],
    [AS_HELP_STRING([--with-check=DIR],
        [libcheck prefix for the tests (DIR/include, DIR/lib); --without-check disables the tests])])
tr_have_check=no
AS_CASE([$with_check],
    [no], [],
    [yes|""], [PKG_CHECK_MODULES([CHECK], [check >= 0.11], [tr_have_check=yes],
                   [tr_have_check=maybe; CHECK_LIBS=${CHECK_LIBS:--lcheck}])],
    [tr_have_check=maybe
     tr_check_libdir=$with_check/lib
     test -d "$tr_check_libdir" || tr_check_libdir=$with_check/lib64
     CHECK_CFLAGS="-I$with_check/include"; CHECK_LIBS="-L$tr_check_libdir -lcheck"])

dnl Without pkg-config, a static libcheck may need its own dependencies.
AS_IF([test "x$tr_have_check" = xmaybe], [
    tr_check_save_CPPFLAGS=$CPPFLAGS; tr_check_save_LIBS=$LIBS
    CPPFLAGS="$CPPFLAGS $CHECK_CFLAGS"
    AC_CACHE_CHECK([for libcheck 0.11 or newer], [tr_cv_check_libs], [
        tr_cv_check_libs=no
        for tr_check_extra in "" "-lsubunit -lm -lrt -pthread" "-lm -lrt -pthread"; do
            LIBS="$CHECK_LIBS $tr_check_extra $tr_check_save_LIBS"
            AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <check.h>
#if CHECK_MAJOR_VERSION == 0 && CHECK_MINOR_VERSION < 11
#error check too old
#endif]], [[Suite *s = suite_create("x"); SRunner *r = srunner_create(s); srunner_free(r);]])],
                [tr_cv_check_libs="$CHECK_LIBS $tr_check_extra"; break])
        done])
    CPPFLAGS=$tr_check_save_CPPFLAGS; LIBS=$tr_check_save_LIBS
    AS_IF([test "x$tr_cv_check_libs" != xno],
        [tr_have_check=yes; CHECK_LIBS=$tr_cv_check_libs],
        [tr_have_check=no])])

AS_IF([test "x$tr_have_check" = xno], [
    AS_CASE([$with_check],
        [no], [AC_MSG_NOTICE([tests disabled by --without-check])],
        [""], [AC_MSG_WARN([libcheck not found: the tests are disabled.
  On Debian: apt-get install check; or pass --with-check=DIR or CHECK_CFLAGS/CHECK_LIBS.])],
        [AC_MSG_ERROR([libcheck not found, but --with-check=$with_check asks for it])])
    CHECK_CFLAGS=; CHECK_LIBS=])
AC_SUBST([CHECK_CFLAGS])
AC_SUBST([CHECK_LIBS])
AM_CONDITIONAL([HAVE_CHECK], [test "x$tr_have_check" = xyes])
])
