/* PASCAL VOC detection sets: a small strict XML reader for the annotations and the split lists. */
#include "host/voc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ist_voc_classes[IST_VOC_CLASSES] = {
    "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",   "car",   "cat",   "chair", "cow",
    "diningtable", "dog",   "horse", "motorbike",   "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};

int ist_voc_class_index(const char *name) {
  for (int k = 0; k < IST_VOC_CLASSES; k++)
    if (strcmp(name, ist_voc_classes[k]) == 0) return k;
  return -1;
}

/* ---- The XML tree: elements with their first text run; attributes are skipped. ---- */

typedef struct {
  const char *name, *text; /* not terminated: name_len, text_len */
  int name_len, text_len, line;
  int parent, first_child, last_child, next;
} xml_node;

typedef struct {
  xml_node *nodes;
  int n, cap;
} xml_tree;

static int xml_is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':' ||
         c == '-' || c == '.';
}

static int count_lines(const char *start, const char *p) {
  int line = 1;
  for (const char *q = start; q < p; q++) line += *q == '\n';
  return line;
}

/* Skips past the terminator after p; NULL if missing. */
static const char *skip_past(const char *p, const char *end) {
  const char *q = strstr(p, end);
  return q ? q + strlen(end) : NULL;
}

static ist_status xml_parse(const char *file, const char *text, xml_tree *t) {
  const char *p = text;
  int cur = -1, roots = 0;
  t->nodes = NULL;
  t->n = t->cap = 0;
  while (*p) {
    if (*p != '<') {
      const char *s = p;
      while (*p && *p != '<') p++;
      if (cur >= 0) {
        xml_node *c = &t->nodes[cur];
        const char *a = s, *b = p;
        while (a < b && (*a == ' ' || *a == '\t' || *a == '\n' || *a == '\r')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\n' || b[-1] == '\r')) b--;
        if (b > a && !c->text) {
          c->text = a;
          c->text_len = (int)(b - a);
        }
      } else {
        for (const char *q = s; q < p; q++)
          if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r')
            return ist_fail(IST_ERR_FORMAT, "VOC annotation %s line %d: text outside the root element", file,
                            count_lines(text, q));
      }
      continue;
    }
    const char *tag = p;
    if (strncmp(p, "<?", 2) == 0 || strncmp(p, "<!--", 4) == 0 || strncmp(p, "<!", 2) == 0) {
      p = skip_past(p, p[1] == '?' ? "?>" : strncmp(p, "<!--", 4) == 0 ? "-->" : ">");
      if (!p)
        return ist_fail(IST_ERR_FORMAT, "VOC annotation %s line %d: unterminated declaration or comment", file,
                        count_lines(text, tag));
      continue;
    }
    int closing = p[1] == '/';
    p += closing ? 2 : 1;
    const char *name = p;
    while (xml_is_name_char(*p)) p++;
    int name_len = (int)(p - name);
    if (name_len == 0)
      return ist_fail(IST_ERR_FORMAT, "VOC annotation %s line %d: malformed tag", file, count_lines(text, tag));
    /* Attributes (ignored), with quoted values that may hold '>'. */
    char quote = 0;
    while (*p && (quote || (*p != '>'))) {
      if (quote && *p == quote)
        quote = 0;
      else if (!quote && (*p == '"' || *p == '\''))
        quote = *p;
      p++;
    }
    if (!*p)
      return ist_fail(IST_ERR_FORMAT, "VOC annotation %s line %d: unterminated tag <%.*s", file,
                      count_lines(text, tag), name_len, name);
    int self_closing = p[-1] == '/';
    p++;
    if (closing) {
      if (cur < 0 || t->nodes[cur].name_len != name_len || strncmp(t->nodes[cur].name, name, name_len) != 0)
        return ist_fail(IST_ERR_FORMAT, "VOC annotation %s line %d: </%.*s> does not close %s%.*s%s", file,
                        count_lines(text, tag), name_len, name, cur < 0 ? "any element" : "<",
                        cur < 0 ? 0 : t->nodes[cur].name_len, cur < 0 ? "" : t->nodes[cur].name, cur < 0 ? "" : ">");
      cur = t->nodes[cur].parent;
      continue;
    }
    if (cur < 0 && roots++ > 0)
      return ist_fail(IST_ERR_FORMAT, "VOC annotation %s line %d: a second root element <%.*s>", file,
                      count_lines(text, tag), name_len, name);
    if (t->n == t->cap) {
      int cap = t->cap ? 2 * t->cap : 64;
      xml_node *nn = realloc(t->nodes, (size_t)cap * sizeof *nn);
      if (!nn) return ist_fail(IST_ERR_MEMORY, "VOC annotation %s: out of memory", file);
      t->nodes = nn;
      t->cap = cap;
    }
    int id = t->n++;
    t->nodes[id] = (xml_node){name, NULL, name_len, 0, count_lines(text, tag), cur, -1, -1, -1};
    if (cur >= 0) {
      xml_node *par = &t->nodes[cur];
      if (par->last_child >= 0)
        t->nodes[par->last_child].next = id;
      else
        par->first_child = id;
      par->last_child = id;
    }
    if (!self_closing) cur = id;
  }
  if (cur >= 0)
    return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: <%.*s> (line %d) is never closed", file,
                    t->nodes[cur].name_len, t->nodes[cur].name, t->nodes[cur].line);
  if (t->n == 0) return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: no root element", file);
  return IST_OK;
}

/* The first direct child of node named name, or −1. */
static int xml_child(const xml_tree *t, int node, const char *name) {
  int len = (int)strlen(name);
  for (int c = t->nodes[node].first_child; c >= 0; c = t->nodes[c].next)
    if (t->nodes[c].name_len == len && strncmp(t->nodes[c].name, name, len) == 0) return c;
  return -1;
}

/* ---- Strict numbers. ---- */

/* A non-negative integer of at most 9 digits (no sign, no spaces inside). */
static int parse_int(const char *s, int len, long *v) {
  if (len < 1 || len > 9) return 0;
  long x = 0;
  for (int i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    x = 10 * x + (s[i] - '0');
  }
  *v = x;
  return 1;
}

/* A non-negative decimal: digits, optionally '.' and digits; at most 9 integer digits. */
static int parse_decimal(const char *s, int len, double *v) {
  int i = 0, ints = 0, fracs = 0;
  double x = 0, scale = 1;
  for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, ints++) x = 10 * x + (s[i] - '0');
  if (ints == 0 || ints > 9) return 0;
  if (i < len && s[i] == '.') {
    for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, fracs++) {
      scale /= 10;
      x += scale * (s[i] - '0');
    }
    if (fracs == 0) return 0;
  }
  if (i != len) return 0;
  *v = x;
  return 1;
}

static ist_status field_text(const char *file, const xml_tree *t, int node, const char *where, const char *field,
                             int *out) {
  int c = xml_child(t, node, field);
  if (c < 0) return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: %s<%s> is missing", file, where, field);
  if (!t->nodes[c].text)
    return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: %s<%s> (line %d) is empty", file, where, field,
                    t->nodes[c].line);
  *out = c;
  return IST_OK;
}

static ist_status size_field(const char *file, const xml_tree *t, int size, const char *field, int *v) {
  int c = -1;
  long x;
  IST_TRY(field_text(file, t, size, "<size>/", field, &c));
  const xml_node *n = &t->nodes[c];
  if (!parse_int(n->text, n->text_len, &x) || x < 1 || x > IST_VOC_MAX_SIDE)
    return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: <size>/<%s> (line %d) is '%.*s', not an integer in 1..%d",
                    file, field, n->line, n->text_len, n->text, IST_VOC_MAX_SIDE);
  *v = (int)x;
  return IST_OK;
}

static ist_status parse_object(const char *file, const xml_tree *t, int obj, int index, int width, int height,
                               ist_voc_object *o) {
  char where[64];
  snprintf(where, sizeof where, "object %d ", index);
  int c = -1;
  IST_TRY(field_text(file, t, obj, where, "name", &c));
  const xml_node *nm = &t->nodes[c];
  char name[64];
  int k = -1;
  if (nm->text_len < (int)sizeof name) {
    memcpy(name, nm->text, (size_t)nm->text_len);
    name[nm->text_len] = 0;
    k = ist_voc_class_index(name);
  }
  if (k < 0)
    return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: object %d <name> (line %d) '%.*s' is not a VOC class", file,
                    index, nm->line, nm->text_len > 40 ? 40 : nm->text_len, nm->text);
  o->label = k;
  o->difficult = 0;
  int d = xml_child(t, obj, "difficult");
  if (d >= 0) {
    const xml_node *dn = &t->nodes[d];
    long x;
    if (!dn->text || !parse_int(dn->text, dn->text_len, &x) || x > 1)
      return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: object %d <difficult> (line %d) is '%.*s', not 0 or 1",
                      file, index, dn->line, dn->text ? dn->text_len : 0, dn->text ? dn->text : "");
    o->difficult = (int)x;
  }
  int bb = xml_child(t, obj, "bndbox");
  if (bb < 0) return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: object %d <bndbox> is missing", file, index);
  static const char *const fields[4] = {"xmin", "ymin", "xmax", "ymax"};
  snprintf(where, sizeof where, "object %d <bndbox>/", index);
  for (int f = 0; f < 4; f++) {
    IST_TRY(field_text(file, t, bb, where, fields[f], &c));
    const xml_node *n = &t->nodes[c];
    double v;
    if (!parse_decimal(n->text, n->text_len, &v))
      return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: object %d <bndbox>/<%s> (line %d) is '%.*s', not a number",
                      file, index, fields[f], n->line, n->text_len > 40 ? 40 : n->text_len, n->text);
    double side = f % 2 == 0 ? width : height;
    if (v > side)
      return ist_fail(IST_ERR_FORMAT,
                      "VOC annotation %s: object %d <bndbox>/<%s> (line %d) = %g lies outside the image (%s %d)", file,
                      index, fields[f], n->line, v, f % 2 == 0 ? "width" : "height", (int)side);
    o->box[f] = (float)v;
  }
  for (int a = 0; a < 2; a++)
    if (o->box[a + 2] < o->box[a])
      return ist_fail(IST_ERR_FORMAT, "VOC annotation %s: object %d <bndbox> is empty: <%s> %g < <%s> %g", file, index,
                      fields[a + 2], o->box[a + 2], fields[a], o->box[a]);
  return IST_OK;
}

ist_status ist_voc_parse(const char *name, const char *text, ist_voc_annotation *out) {
  memset(out, 0, sizeof *out);
  xml_tree t;
  ist_status s = xml_parse(name, text, &t);
  if (s != IST_OK) {
    free(t.nodes);
    return s;
  }
  if (t.nodes[0].name_len != 10 || strncmp(t.nodes[0].name, "annotation", 10) != 0) {
    s = ist_fail(IST_ERR_FORMAT, "VOC annotation %s: the root element is <%.*s>, not <annotation>", name,
                 t.nodes[0].name_len, t.nodes[0].name);
    goto done;
  }
  int size = xml_child(&t, 0, "size");
  if (size < 0) {
    s = ist_fail(IST_ERR_FORMAT, "VOC annotation %s: <size> is missing", name);
    goto done;
  }
  if ((s = size_field(name, &t, size, "width", &out->width)) != IST_OK ||
      (s = size_field(name, &t, size, "height", &out->height)) != IST_OK ||
      (s = size_field(name, &t, size, "depth", &out->depth)) != IST_OK)
    goto done;
  int count = 0;
  for (int c = t.nodes[0].first_child; c >= 0; c = t.nodes[c].next)
    count += t.nodes[c].name_len == 6 && strncmp(t.nodes[c].name, "object", 6) == 0;
  if (count) {
    out->objects = calloc((size_t)count, sizeof *out->objects);
    if (!out->objects) {
      s = ist_fail(IST_ERR_MEMORY, "VOC annotation %s: out of memory", name);
      goto done;
    }
  }
  for (int c = t.nodes[0].first_child; c >= 0; c = t.nodes[c].next)
    if (t.nodes[c].name_len == 6 && strncmp(t.nodes[c].name, "object", 6) == 0) {
      s = parse_object(name, &t, c, out->n + 1, out->width, out->height, &out->objects[out->n]);
      if (s != IST_OK) goto done;
      out->n++;
    }
done:
  free(t.nodes);
  if (s != IST_OK) ist_voc_annotation_free(out);
  return s;
}

/* The whole file, NUL-terminated; NULL with the error set. */
static char *read_text(const char *path, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    ist_fail(IST_ERR_IO, "%s %s: cannot open", what, path);
    return NULL;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (cap - len < 4096) {
      cap = cap ? 2 * cap : 8192;
      char *nb = realloc(buf, cap + 1);
      if (!nb) {
        free(buf);
        fclose(f);
        ist_fail(IST_ERR_MEMORY, "%s %s: out of memory", what, path);
        return NULL;
      }
      buf = nb;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    len += r;
    if (r == 0) break;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    ist_fail(IST_ERR_IO, "%s %s: read error", what, path);
    return NULL;
  }
  buf[len] = 0;
  if (strlen(buf) != len) {
    free(buf);
    ist_fail(IST_ERR_FORMAT, "%s %s: holds a NUL byte (not text)", what, path);
    return NULL;
  }
  return buf;
}

ist_status ist_voc_read(const char *path, ist_voc_annotation *out) {
  memset(out, 0, sizeof *out);
  char *text = read_text(path, "VOC annotation");
  if (!text) return IST_ERR_IO;
  ist_status s = ist_voc_parse(path, text, out);
  free(text);
  return s;
}

void ist_voc_annotation_free(ist_voc_annotation *a) {
  free(a->objects);
  a->objects = NULL;
  a->n = 0;
}

/* ---- Split lists and sets. ---- */

static char *join3(const char *a, const char *b, const char *c) {
  size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, b, c);
  return s;
}

static ist_status set_push(ist_voc_set *s, int64_t *cap, const char *root, const char *id) {
  if (s->n == *cap) {
    int64_t nc = *cap ? 2 * *cap : 256;
    char **jp = realloc(s->jpeg_paths, (size_t)nc * sizeof *jp);
    if (jp) s->jpeg_paths = jp;
    char **ids = realloc(s->ids, (size_t)nc * sizeof *ids);
    if (ids) s->ids = ids;
    ist_voc_annotation *an = realloc(s->annotations, (size_t)nc * sizeof *an);
    if (an) s->annotations = an;
    if (!jp || !ids || !an) return ist_fail(IST_ERR_MEMORY, "VOC set %s: out of memory", root);
    *cap = nc;
  }
  char *dir = join3(root, "/Annotations/", id);
  char *xml = dir ? join3(dir, ".xml", "") : NULL;
  free(dir);
  char *jdir = join3(root, "/JPEGImages/", id);
  char *jpg = jdir ? join3(jdir, ".jpg", "") : NULL;
  free(jdir);
  char *idc = strdup(id);
  if (!xml || !jpg || !idc) {
    free(xml), free(jpg), free(idc);
    return ist_fail(IST_ERR_MEMORY, "VOC set %s: out of memory", root);
  }
  ist_status st = ist_voc_read(xml, &s->annotations[s->n]);
  free(xml);
  if (st != IST_OK) {
    free(jpg), free(idc);
    return st;
  }
  s->jpeg_paths[s->n] = jpg;
  s->ids[s->n] = idc;
  s->n++;
  return IST_OK;
}

static ist_status load_root(const char *root, const char *split, int64_t limit, ist_voc_set *s, int64_t *cap) {
  char *path = join3(root, "/ImageSets/Main/", split);
  char *list = path ? join3(path, ".txt", "") : NULL;
  free(path);
  if (!list) return ist_fail(IST_ERR_MEMORY, "VOC set %s: out of memory", root);
  char *text = read_text(list, "VOC split list");
  if (!text) {
    free(list);
    return IST_ERR_IO;
  }
  ist_status st = IST_OK;
  int64_t before = s->n;
  int line = 0;
  for (char *p = text; *p && (limit <= 0 || s->n < limit);) {
    char *eol = strchr(p, '\n');
    if (eol) *eol = 0;
    line++;
    /* The first token of the line is the id (class lists add a ±1 column). */
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    char *e = p;
    while (*e && *e != ' ' && *e != '\t' && *e != '\r') e++;
    *e = 0;
    if (*p) {
      for (char *q = p; *q; q++)
        if (!((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || *q == '_' ||
              *q == '-' || *q == '.') ||
            (q == p && *q == '.')) {
          st = ist_fail(IST_ERR_FORMAT, "VOC split list %s line %d: '%s' is not an image id", list, line, p);
          goto done;
        }
      if ((st = set_push(s, cap, root, p)) != IST_OK) goto done;
    }
    if (!eol) break;
    p = eol + 1;
  }
  if (s->n == before) st = ist_fail(IST_ERR_FORMAT, "VOC split list %s: lists no images", list);
done:
  free(text);
  free(list);
  return st;
}

ist_status ist_voc_load(const char *const *roots, int nroots, const char *split, int64_t limit, ist_voc_set *out) {
  memset(out, 0, sizeof *out);
  if (nroots < 1) return ist_fail(IST_ERR_ARG, "VOC set: no root directory given");
  int64_t cap = 0;
  for (int r = 0; r < nroots && (limit <= 0 || out->n < limit); r++) {
    ist_status s = load_root(roots[r], split, limit, out, &cap);
    if (s != IST_OK) {
      ist_voc_set_free(out);
      return s;
    }
  }
  return IST_OK;
}

ist_status ist_voc_load_spec(const char *spec, const char *split, int64_t limit, ist_voc_set *out) {
  memset(out, 0, sizeof *out);
  char *copy = strdup(spec);
  if (!copy) return ist_fail(IST_ERR_MEMORY, "VOC set %s: out of memory", spec);
  const char *roots[16];
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(copy, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
    if (n == 16) {
      free(copy);
      return ist_fail(IST_ERR_ARG, "--data %s: more than 16 VOC roots", spec);
    }
    roots[n++] = tok;
  }
  ist_status s = n ? ist_voc_load(roots, n, split, limit, out)
                   : ist_fail(IST_ERR_ARG, "--data '%s': no VOC root directory", spec);
  free(copy);
  return s;
}

void ist_voc_set_free(ist_voc_set *s) {
  for (int64_t i = 0; i < s->n; i++) {
    free(s->jpeg_paths[i]);
    free(s->ids[i]);
    ist_voc_annotation_free(&s->annotations[i]);
  }
  free(s->jpeg_paths);
  free(s->ids);
  free(s->annotations);
  memset(s, 0, sizeof *s);
}
