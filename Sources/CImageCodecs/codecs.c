#include "CImageCodecs.h"
int cic_placeholder(void) { return 0; }
