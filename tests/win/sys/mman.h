/* tests/win/sys/mman.h - the part of POSIX <sys/mman.h> the parser tests use
   (guarded buffers: an anonymous mapping whose last page is made
   inaccessible), over VirtualAlloc/VirtualProtect/VirtualFree, and sysconf's
   page size. Only for the Windows builds of tests/interop_windows.sh (-I
   tests/win); mingw-w64 has no <sys/mman.h>. Reading past a buffer still
   faults (an access violation ends the test). */
#ifndef RTWS_TEST_WIN_MMAN_H
#define RTWS_TEST_WIN_MMAN_H
#include <stddef.h>
#include <windows.h>

#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define MAP_PRIVATE 2
#define MAP_ANONYMOUS 0x20
#define MAP_FAILED ((void *)-1)
#define _SC_PAGESIZE 30

static void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off) {
    void *p;
    (void)addr, (void)flags, (void)fd, (void)off;
    p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT,
                     prot & PROT_WRITE ? PAGE_READWRITE : prot ? PAGE_READONLY : PAGE_NOACCESS);
    return p ? p : MAP_FAILED;
}
static int mprotect(void *addr, size_t len, int prot) {
    DWORD old;
    return VirtualProtect(addr, len,
                          prot & PROT_WRITE ? PAGE_READWRITE : prot ? PAGE_READONLY : PAGE_NOACCESS,
                          &old)
               ? 0
               : -1;
}
static int munmap(void *addr, size_t len) {
    (void)len;
    return VirtualFree(addr, 0, MEM_RELEASE) ? 0 : -1;
}
static long sysconf(int name) {
    SYSTEM_INFO si;
    (void)name;
    GetSystemInfo(&si);
    return (long)si.dwPageSize;
}
#endif
