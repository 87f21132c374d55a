/* tests/win/poll.h - POSIX poll() over WSAPoll for the Windows builds of
   tests/interop_windows.sh (-I tests/win): the struct pollfd of <winsock2.h>
   holds a SOCKET, the tests' fds come from rtws (its ints). */
#ifndef RTWS_TEST_WIN_POLL_H
#define RTWS_TEST_WIN_POLL_H
#include <winsock2.h>
typedef ULONG nfds_t;
static int rtws_test_poll(struct pollfd *fds, nfds_t n, int ms) { return WSAPoll(fds, n, ms); }
#define poll rtws_test_poll
#endif
