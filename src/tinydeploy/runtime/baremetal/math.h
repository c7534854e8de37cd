/* The subset of <math.h> that runtime/baremetal/libm.c implements (freestanding builds have no
 * libm). Error bounds are stated in libm.c. */
#ifndef TD_MATH_H
#define TD_MATH_H

#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))

float fabsf(float x);
float sqrtf(float x);
float expf(float x);
float expm1f(float x);
float logf(float x);
float tanhf(float x);
float erff(float x);
float sinf(float x);
float cosf(float x);

#endif
