#include <oneapi/dnnl/dnnl.h>
// libgomp is oneDNN's threading runtime in Debian's build. capfilt owns the threads and gives oneDNN one piece
// per call, so each calling thread sets its own OpenMP team size to 1 (a per-thread setting in libgomp).
extern void omp_set_num_threads(int);
extern int omp_get_max_threads(void);
