/* libFuzzer: `--resume` from a training state. A valid state of a small cnn3 student (a template
 * made at start-up) is the base: an input starting with 'P' replaces its position metadata (epoch,
 * step, optimizer step, progress sums) with the rest of the input; any other input's rest is the
 * whole state file. Then training resumes from it as the program does, for up to two epochs of two
 * steps on two synthetic images. */
#include "host/safetensors.h"
#include "kernels/backend.h"
#include "models/model.h"
#include "train/trainer.h"
#include "tests/fuzz/fuzz_util.h"

static char template_path[1024], state_path[1024];
static ist_dataset train_set, test_set;
static ist_model_config cfg;

static ist_train_config train_config(int epochs, const char *path) {
  return (ist_train_config){.stage = "teacher", .epochs = epochs, .lr = 0.002f, .lr_decay = 0.9f, .weight_decay = 5e-4f,
                            .seed = 1, .state_path = path, .resume = 1};
}

static void make_data(ist_dataset *d, int n) {
  *d = (ist_dataset){.n = n, .c = 1, .h = 28, .w = 28, .classes = 10};
  d->images = calloc((size_t)n * 784, sizeof(float));
  d->labels = calloc((size_t)n, sizeof(int32_t));
  for (int i = 0; i < n * 784; i++) d->images[i] = (float)(i % 17) / 17.0f - 0.5f;
  for (int i = 0; i < n; i++) d->labels[i] = i % 10;
  d->mean[0] = 0, d->std[0] = 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  make_data(&train_set, 2);
  make_data(&test_set, 1);
  if (ist_setting_parse("1-2-4-4-4", &cfg.global) != IST_OK) abort();
  fuzz_path(template_path, sizeof template_path, "template.state.safetensors");
  fuzz_path(state_path, sizeof state_path, "input.state.safetensors");
  /* The template: one epoch trained, then the state as a kill mid-epoch 2 would leave it. */
  ist_model m;
  if (ist_model_create("cnn3", ist_backend_cpu(), 1, &cfg, &m) != IST_OK) abort();
  ist_model_init_params(&m, 1);
  ist_train_config tc = train_config(1, template_path);
  ist_train_result r;
  if (ist_train(&m, NULL, &train_set, &test_set, &tc, &r) != IST_OK) abort();
  ist_model_destroy(&m);
  if (fuzz_seed_dir()) {
    ist_safetensors f;
    if (ist_st_read(template_path, &f) != IST_OK) abort();
    const char *pos = ist_st_meta_get(&f, "position");
    char buf[4200];
    snprintf(buf, sizeof buf, "P%s", pos);
    fuzz_seed("position_epoch_end", buf, strlen(buf));
    snprintf(buf, sizeof buf, "Pepoch=1 step=1 radam_step=3 loss_sum=2.5 hits_sum=0 seconds=0.5 test_acc=0.1");
    fuzz_seed("position_mid_epoch", buf, strlen(buf));
    ist_st_free(&f);
    FILE *in = fopen(template_path, "rb");
    fseek(in, 0, SEEK_END);
    const long n = ftell(in);
    rewind(in);
    char *whole = malloc((size_t)n + 1);
    whole[0] = 'F';
    if (fread(whole + 1, 1, (size_t)n, in) != (size_t)n) abort();
    fclose(in);
    fuzz_seed("whole_state", whole, (size_t)n + 1);
    free(whole);
    exit(0);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (data[0] == 'P') {
    ist_safetensors f;
    if (ist_st_read(template_path, &f) != IST_OK) abort();
    for (int i = 0; i < f.nmeta; i++)
      if (!strcmp(f.meta[i].key, "position")) {
        const size_t n = size - 1 < sizeof f.meta[i].value - 1 ? size - 1 : sizeof f.meta[i].value - 1;
        memcpy(f.meta[i].value, data + 1, n);
        f.meta[i].value[n] = 0;
        for (size_t k = 0; k < n; k++) /* what the writer can store */
          if (f.meta[i].value[k] == '"' || f.meta[i].value[k] == '\\' || (unsigned char)f.meta[i].value[k] < 0x20)
            f.meta[i].value[k] = ' ';
      }
    const ist_status st = ist_st_write(state_path, f.tensors, f.ntensors, f.meta, f.nmeta);
    ist_st_free(&f);
    if (st != IST_OK) abort();
  } else {
    fuzz_write(state_path, data + 1, size - 1);
  }
  ist_model m;
  if (ist_model_create("cnn3", ist_backend_cpu(), 1, &cfg, &m) != IST_OK) abort();
  ist_model_init_params(&m, 1);
  ist_train_config tc = train_config(2, state_path);
  ist_train_result r;
  ist_train(&m, NULL, &train_set, &test_set, &tc, &r);
  ist_model_destroy(&m);
  return 0;
}
