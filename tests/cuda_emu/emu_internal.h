/* Shared between the emulator's runtime files: the error state of the emulated device. */
#ifndef IST_EMU_INTERNAL_H
#define IST_EMU_INTERNAL_H
#include <cuda_runtime.h>

#include <string>

namespace ist_emu {
/* A fault found while running a kernel (or in a library call): sticky, like a GPU's launch
 * failure, until ist_emu_reset(). Printed to stderr and kept as the last report. */
void report_fault(cudaError_t code, const std::string &msg);
/* A refused call (bad launch configuration, bad argument): returned by the next
 * cudaGetLastError() and then cleared, as on a GPU. */
void report_error(cudaError_t code, const std::string &msg);
/* A message only (a library call refused its arguments and returned its own status): kept as
 * the last report and printed; no CUDA error is set. */
void report_note(const std::string &msg);
/* The sticky fault's code, or cudaSuccess. */
cudaError_t sticky();
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
}  // namespace ist_emu
#endif
