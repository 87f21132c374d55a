/* Second translation unit: declarations only. */
#include "rtws.h"
int compile_other_unit(void);
int compile_other_unit(void) {
    uint8_t d[20];
    rtws_sha1("abc", 3, d);
    return d[0] == 0xA9 ? 0 : 1;
}
