/* Initializing a generated student from a dense teacher (SPEC §4 step 1). */
#ifndef IST_PROJECT_H
#define IST_PROJECT_H
#include "models/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { IST_INIT_RANDOM, IST_INIT_SVD, IST_INIT_L2 } ist_init_method;

ist_status ist_init_method_parse(const char *text, ist_init_method *out);

/* ℓ2 projection: minimizes ‖Ŵ − V·{U_j·Wb_j}‖²_F over the layer's (unquantized) factors with RAdam,
 * starting from the SVD projection; returns the final relative error ‖Ŵ − W‖/‖Ŵ‖. */
float ist_project_l2(const ist_backend *be, ist_conv_layer *l, const float *w_teacher, int iters, float lr);
/* SVD projection: rank-Bc SVD of Ŵ (Co×K) for V and Wc, then rank-Bi SVD of each Wc_j for U_j, Wb_j.
 * Returns the relative error. */
float ist_project_svd(const ist_backend *be, ist_conv_layer *l, const float *w_teacher);
/* Relative error ‖Ŵ − W(factors)‖/‖Ŵ‖ of the layer's current (unquantized) factors. */
float ist_projection_error(const ist_backend *be, ist_conv_layer *l, const float *w_teacher);

/* The same after the factors are quantized (the weight the student actually uses). */
float ist_quantized_projection_error(const ist_backend *be, ist_conv_layer *l, const float *w_teacher);

/* Builds the student's initial state from the teacher: every generated conv projected by method
 * (dense convs copied), BatchNorm and classifier copied. Prints one line per layer when verbose. */
ist_status ist_init_student(ist_model *student, ist_model *teacher, ist_init_method method, int l2_iters,
                            float l2_lr, uint64_t seed, int verbose);

#ifdef __cplusplus
}
#endif
#endif
