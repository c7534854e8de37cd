/* A float computation: softmax of a dot-product row and an RMS norm, with libm. */
#include "math.h"

#define N 16
float x[N], w[N][N];
float y[N];
float rms;

int main(void)
{
    for (int i = 0; i < N; i++) {
        x[i] = (float)(i - 7) * 0.25f;
        for (int j = 0; j < N; j++)
            w[i][j] = (float)((i * 7 + j * 3) % 11 - 5) * 0.125f;
    }
    float mx = -INFINITY, s = 0.0f, ss = 0.0f;
    for (int i = 0; i < N; i++) {
        float acc = 0.0f;
        for (int j = 0; j < N; j++)
            acc += w[i][j] * x[j];
        y[i] = acc;
        mx = acc > mx ? acc : mx;
    }
    for (int i = 0; i < N; i++) {
        y[i] = expf(y[i] - mx);
        s += y[i];
    }
    for (int i = 0; i < N; i++) {
        y[i] /= s;
        ss += x[i] * x[i];
    }
    rms = sqrtf(ss / N);
    return 0;
}
