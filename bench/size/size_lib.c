/* Size probe: the library alone, every public function kept (extern linkage),
   for the switches' builds (bench/size/switches.sh passes -DRTWS_NO_*). */
#define RTWS_IMPLEMENTATION
#include "../../rtws.h"
