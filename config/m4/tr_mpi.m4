# tr_mpi.m4: MPI compile and link flags, and the launcher.
#
# The library is compiled with $CC, not with the mpicc wrapper; this macro
# asks the MPI installation for its flags, first hit wins:
#   1. MPI_CFLAGS / MPI_LIBS given by the user;
#   2. the wrapper (DIR/bin/mpicc with --with-mpi=DIR, else mpicc in PATH;
#      or MPICC=wrapper):
#      Open MPI `--showme:compile` / `--showme:link`, MPICH `-compile_info` /
#      `-link_info`, or `-show` (MPICH, Intel MPI, MVAPICH);
#   3. --with-mpi=DIR: -IDIR/include, -LDIR/lib -lmpi;
#   4. pkg-config ompi-c, then mpich;
#   5. a plain -lmpi.
# The result must compile and link MPI_Init_thread, or configure stops.
#
# Substitutes MPI_CFLAGS, MPI_LIBS, MPIRUN (mpirun or mpiexec, in DIR/bin
# with --with-mpi=DIR, else in PATH) and
# MPIRUN_FLAGS ("--oversubscribe" for Open MPI, so that tests run more ranks
# than cores; MPIEXEC_FLAGS is the same value).  Sets tr_mpi_version and
# tr_mpi_how for the summary.

# _TR_MPI_FILTER_FN defines the shell function `tr_mpi_filter cflags|libs
# WORDS...`, which keeps the words of a wrapper's command line that belong to
# the compile step or to the link step (it drops the compiler's name).
AC_DEFUN([_TR_MPI_FILTER_FN], [
tr_mpi_filter () {
    tr_mpi_kind=$[1]; shift
    tr_mpi_out=; tr_mpi_next=
    for tr_mpi_w in "$[@]"; do
        if test -n "$tr_mpi_next"; then
            tr_mpi_out="$tr_mpi_out $tr_mpi_w"; tr_mpi_next=; continue
        fi
        case $tr_mpi_kind:$tr_mpi_w in
        cflags:-I*|cflags:-D*|cflags:-pthread|libs:-L*|libs:-l*|libs:-Wl,*|libs:-pthread|libs:*.so|libs:*.a)
            tr_mpi_out="$tr_mpi_out $tr_mpi_w" ;;
        cflags:-isystem|libs:-Xlinker)
            tr_mpi_out="$tr_mpi_out $tr_mpi_w"; tr_mpi_next=yes ;;
        esac
    done
    echo $tr_mpi_out
}
])

AC_DEFUN([TR_CHECK_MPI], [
AC_REQUIRE([PKG_PROG_PKG_CONFIG])
AC_REQUIRE([_TR_MPI_FILTER_FN])
AC_ARG_WITH([mpi],
    [AS_HELP_STRING([--with-mpi=DIR],
        [MPI installation prefix (uses DIR/bin/mpicc, else DIR/include and DIR/lib)])])
AC_ARG_VAR([MPICC], [MPI compiler wrapper, only asked for MPI's flags])
AC_ARG_VAR([MPI_CFLAGS], [C compiler flags for MPI, overriding detection])
AC_ARG_VAR([MPI_LIBS], [linker flags for MPI, overriding detection])
AC_ARG_VAR([MPIRUN], [MPI launcher used by the tests and examples])

AS_CASE([$with_mpi],
    [no], [AC_MSG_ERROR([taskray needs MPI; --without-mpi is not supported])],
    [yes|""], [tr_mpi_dir=; tr_mpi_path=$PATH],
    [tr_mpi_dir=$with_mpi; tr_mpi_path=$with_mpi/bin])
AC_PATH_PROGS([MPICC], [mpicc mpigcc], [], [$tr_mpi_path])

AC_MSG_CHECKING([for MPI compile and link flags])
tr_mpi_how=; tr_mpi_wrapper=yes
AS_IF([test -n "$MPI_CFLAGS$MPI_LIBS"],
        [tr_mpi_how="MPI_CFLAGS/MPI_LIBS"; tr_mpi_wrapper=no],
    [test -n "$MPICC" && tr_mpi_c=`$MPICC --showme:compile 2>/dev/null` &&
     tr_mpi_l=`$MPICC --showme:link 2>/dev/null` && test -n "$tr_mpi_l"],
        [tr_mpi_how="$MPICC --showme"],
    [test -n "$MPICC" && tr_mpi_c=`$MPICC -compile_info 2>/dev/null` &&
     tr_mpi_l=`$MPICC -link_info 2>/dev/null` && test -n "$tr_mpi_l"],
        [tr_mpi_how="$MPICC -compile_info/-link_info"],
    [test -n "$MPICC" && tr_mpi_c=`$MPICC -show 2>/dev/null` && test -n "$tr_mpi_c"],
        [tr_mpi_l=$tr_mpi_c; tr_mpi_how="$MPICC -show"],
    [test -n "$tr_mpi_dir"],
        [tr_mpi_libdir=$tr_mpi_dir/lib
         test -d "$tr_mpi_libdir" || tr_mpi_libdir=$tr_mpi_dir/lib64
         MPI_CFLAGS="-I$tr_mpi_dir/include"; MPI_LIBS="-L$tr_mpi_libdir -lmpi"
         tr_mpi_how="--with-mpi=$tr_mpi_dir"; tr_mpi_wrapper=no],
    [test -n "$PKG_CONFIG" && $PKG_CONFIG --exists ompi-c],
        [MPI_CFLAGS=`$PKG_CONFIG --cflags ompi-c`; MPI_LIBS=`$PKG_CONFIG --libs ompi-c`
         tr_mpi_how="pkg-config ompi-c"; tr_mpi_wrapper=no],
    [test -n "$PKG_CONFIG" && $PKG_CONFIG --exists mpich],
        [MPI_CFLAGS=`$PKG_CONFIG --cflags mpich`; MPI_LIBS=`$PKG_CONFIG --libs mpich`
         tr_mpi_how="pkg-config mpich"; tr_mpi_wrapper=no],
    [MPI_LIBS=-lmpi; tr_mpi_how="compiler defaults"; tr_mpi_wrapper=no])
AS_IF([test "x$tr_mpi_wrapper" = xyes],
    [MPI_CFLAGS=`tr_mpi_filter cflags $tr_mpi_c`
     MPI_LIBS=`tr_mpi_filter libs $tr_mpi_l`])
AC_MSG_RESULT([$tr_mpi_how])

tr_mpi_save_CFLAGS=$CFLAGS; tr_mpi_save_LIBS=$LIBS
CFLAGS="$CFLAGS $MPI_CFLAGS"; LIBS="$MPI_LIBS $LIBS"
AC_MSG_CHECKING([whether MPI programs compile and link])
AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <mpi.h>]],
        [[int provided; MPI_Init_thread(0, 0, MPI_THREAD_MULTIPLE, &provided); MPI_Finalize();]])],
    [AC_MSG_RESULT([yes])],
    [AC_MSG_RESULT([no])
     AC_MSG_ERROR([MPI not found (MPI_CFLAGS="$MPI_CFLAGS" MPI_LIBS="$MPI_LIBS").
  On Debian: apt-get install openmpi-bin libopenmpi-dev (or mpich libmpich-dev);
  on a cluster: module load openmpi; or pass --with-mpi=DIR or MPI_CFLAGS/MPI_LIBS.])])
AC_COMPUTE_INT([tr_mpi_std_major], [MPI_VERSION], [[#include <mpi.h>]], [tr_mpi_std_major=])
AC_COMPUTE_INT([tr_mpi_std_minor], [MPI_SUBVERSION], [[#include <mpi.h>]], [tr_mpi_std_minor=])
AC_COMPUTE_INT([tr_ompi_major], [OMPI_MAJOR_VERSION], [[#include <mpi.h>]], [tr_ompi_major=])
AS_IF([test -n "$tr_ompi_major"],
    [AC_COMPUTE_INT([tr_ompi_minor], [OMPI_MINOR_VERSION], [[#include <mpi.h>]])
     AC_COMPUTE_INT([tr_ompi_release], [OMPI_RELEASE_VERSION], [[#include <mpi.h>]])
     tr_mpi_version="Open MPI $tr_ompi_major.$tr_ompi_minor.$tr_ompi_release"],
    [AC_COMPUTE_INT([tr_mpich_num], [MPICH_NUMVERSION], [[#include <mpi.h>]], [tr_mpich_num=])
     AS_IF([test -n "$tr_mpich_num"], [tr_mpi_version=MPICH], [tr_mpi_version="unknown MPI"])])
tr_mpi_version="$tr_mpi_version (MPI $tr_mpi_std_major.$tr_mpi_std_minor)"
CFLAGS=$tr_mpi_save_CFLAGS; LIBS=$tr_mpi_save_LIBS

AC_PATH_PROGS([MPIRUN], [mpirun mpiexec], [], [$tr_mpi_path])
AS_IF([test -z "$MPIRUN"],
    [AC_MSG_WARN([no mpirun or mpiexec found (Debian: apt-get install openmpi-bin); multi-rank tests will fail])
     MPIRUN=mpirun])
AC_MSG_CHECKING([whether $MPIRUN is Open MPI's])
AS_IF([$MPIRUN --version 2>&1 | grep -E 'Open MPI|OpenRTE' >/dev/null 2>&1],
    [MPIRUN_FLAGS=--oversubscribe; AC_MSG_RESULT([yes])],
    [MPIRUN_FLAGS=; AC_MSG_RESULT([no])])
MPIEXEC_FLAGS=$MPIRUN_FLAGS

AC_SUBST([MPI_CFLAGS])
AC_SUBST([MPI_LIBS])
AC_SUBST([MPIRUN])
AC_SUBST([MPIRUN_FLAGS])
AC_SUBST([MPIEXEC_FLAGS])
])
