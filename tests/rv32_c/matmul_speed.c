/* Speed probe: a naive int8 matmul repeated REPS times, about 7.4 instructions per MAC at -O2. */
#include <stdint.h>
#include "hal.h"
#ifndef N
#define N 64
#endif
#ifndef REPS
#define REPS 1
#endif
int8_t A[N][N], B[N][N];
int32_t C[N][N];
int main(void){
  uint32_t x = 1;
  for (int i=0;i<N;i++) for(int j=0;j<N;j++){ x = x*1103515245u+12345u; A[i][j]=(int8_t)(x>>16); x = x*1103515245u+12345u; B[i][j]=(int8_t)(x>>16);}
  uint64_t t0 = td_cycles();
  for (int r=0;r<REPS;r++)
  for (int i=0;i<N;i++) for(int j=0;j<N;j++){ int32_t acc=0; for(int k=0;k<N;k++) acc += A[i][k]*B[k][j]; C[i][j]=acc+r; }
  uint64_t t1 = td_cycles();
  td_put_int((long)(t1-t0)); td_putc('\n');
  return 0;
}
