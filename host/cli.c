/* Flag parsing against a table of options. */
#include "host/cli.h"

#include <stdlib.h>
#include <string.h>

#include "host/checked.h"

static const ist_option *find(const ist_option *opts, int n, const char *name, size_t len) {
  for (int i = 0; i < n; i++)
    if (strlen(opts[i].name) == len && !strncmp(opts[i].name, name, len)) return &opts[i];
  return NULL;
}

/* The option's range as text ("1..65536"), for messages and --help. */
static void range_text(const ist_option *o, char *buf, size_t cap) {
  if (o->type == IST_OPT_INT) snprintf(buf, cap, "%.0f..%.0f", o->lo, o->hi);
  else snprintf(buf, cap, "%g..%g", o->lo, o->hi);
}

static int ranged(const ist_option *o) { return o->lo != 0 || o->hi != 0; }

static ist_status set_value(const ist_option *o, const char *v) {
  char range[64];
  const double lo = ranged(o) ? o->lo : o->type == IST_OPT_INT ? -2147483647.0 : -3.4e38;
  const double hi = ranged(o) ? o->hi : o->type == IST_OPT_INT ? 2147483647.0 : 3.4e38;
  range_text(&(ist_option){.type = o->type, .lo = lo, .hi = hi}, range, sizeof range);
  switch (o->type) {
  case IST_OPT_INT: {
    int64_t x;
    if (!ist_parse_i64(v, INT64_MIN, INT64_MAX, &x))
      return ist_fail(IST_ERR_ARG, "--%s: '%s' is not a whole number (allowed %s)", o->name, v, range);
    if (x < lo || x > hi) return ist_fail(IST_ERR_ARG, "--%s: %s is out of range (allowed %s)", o->name, v, range);
    *(int *)o->dst = (int)x;
    return IST_OK;
  }
  case IST_OPT_DOUBLE:
  case IST_OPT_FLOAT: {
    double x;
    if (!ist_parse_double(v, -1e308, 1e308, &x))
      return ist_fail(IST_ERR_ARG, "--%s: '%s' is not a finite number (allowed %s)", o->name, v, range);
    if (x < lo || x > hi) return ist_fail(IST_ERR_ARG, "--%s: %s is out of range (allowed %s)", o->name, v, range);
    if (o->type == IST_OPT_FLOAT) *(float *)o->dst = (float)x;
    else *(double *)o->dst = x;
    return IST_OK;
  }
  case IST_OPT_STRING:
    *(const char **)o->dst = v;
    return IST_OK;
  case IST_OPT_FLAG:
    break;
  }
  return ist_fail(IST_ERR_ARG, "--%s takes no value", o->name);
}

ist_status ist_cli_parse(int argc, char **argv, int first, const ist_option *opts, int nopts, int *help) {
  *help = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      *help = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) return ist_fail(IST_ERR_ARG, "unexpected argument '%s' (flags start with --)", a);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const ist_option *o = find(opts, nopts, name, len);
    if (!o) return ist_fail(IST_ERR_ARG, "unknown flag --%.*s (see --help)", (int)len, name);
    if (o->type == IST_OPT_FLAG) {
      if (eq) return ist_fail(IST_ERR_ARG, "--%s takes no value", o->name);
      *(int *)o->dst = 1;
      continue;
    }
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v) return ist_fail(IST_ERR_ARG, "--%s needs a value", o->name);
    IST_TRY(set_value(o, v));
  }
  return IST_OK;
}

void ist_cli_print_help(FILE *out, const char *usage, const ist_option *opts, int nopts) {
  fprintf(out, "%s\n\nFlags:\n", usage);
  for (int i = 0; i < nopts; i++) {
    const ist_option *o = &opts[i];
    char def[64] = "";
    switch (o->type) {
    case IST_OPT_INT: snprintf(def, sizeof def, "%d", *(int *)o->dst); break;
    case IST_OPT_FLOAT: snprintf(def, sizeof def, "%g", *(float *)o->dst); break;
    case IST_OPT_DOUBLE: snprintf(def, sizeof def, "%g", *(double *)o->dst); break;
    case IST_OPT_STRING: snprintf(def, sizeof def, "%s", *(const char **)o->dst ? *(const char **)o->dst : ""); break;
    case IST_OPT_FLAG: break;
    }
    char range[80] = "";
    if (ranged(o)) {
      char r[64];
      range_text(o, r, sizeof r);
      snprintf(range, sizeof range, "; allowed: %s", r);
    }
    fprintf(out, "  --%-16s %s%s%s%s%s\n", o->name, o->help, o->type == IST_OPT_FLAG ? "" : " (default: ",
            o->type == IST_OPT_FLAG ? "" : (def[0] ? def : "none"), range, o->type == IST_OPT_FLAG ? "" : ")");
  }
}
