/*  lines.c - how pmctl prints service log lines (see lines.h)

    A line's bytes go out with fwrite, unchanged: a service's output may
    be binary, and `pmctl logs web > file` must give back what it wrote.
    A piece of a cut line (partial) gets no newline; the next piece of the
    same service and stream continues it without a prefix.  When another
    service's line comes between two pieces, the open line is ended first
    and the continuation gets its prefix again, so output stays one
    service per line.

    Colours: one per service, from a hash of its name, so a service keeps
    its colour from one run to the next.  Red is kept for the "!" of
    standard error lines.
*/
#include "lines.h"

#include <stdlib.h>
#include <string.h>

struct pm_lines_t {
    FILE *out;                    //  lines
    FILE *err;                    //  messages
    bool json;
    bool color;
    bool prefix;
    int width;                    //  longest service name
    char *open_service;           //  whose line a cut piece left open, or NULL
    pm_stream_t open_stream;
};

//  Name colours: green, yellow, blue, magenta, cyan, then bright ones.
static const int s_palette [] = { 32, 33, 34, 35, 36, 92, 93, 94, 95, 96 };

pm_lines_t *
pm_lines_new (FILE *out, FILE *err, bool json, bool color, bool prefix)
{
    pm_lines_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->out = out;
    self->err = err;
    self->json = json;
    self->color = color && !json;
    self->prefix = prefix && !json;
    return self;
}

//  Ends a line left open by a cut piece.
static void
s_close_line (pm_lines_t *self)
{
    if (!self->open_service)
        return;
    fputc ('\n', self->out);
    free (self->open_service);
    self->open_service = NULL;
}

void
pm_lines_destroy (pm_lines_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pm_lines_t *self = *self_p;
    s_close_line (self);
    fflush (self->out);
    free (self);
    *self_p = NULL;
}

void
pm_lines_widen (pm_lines_t *self, const char *service)
{
    int len = (int) strlen (service);
    if (len > self->width)
        self->width = len;
}

void
pm_lines_flush (pm_lines_t *self)
{
    fflush (self->out);
}

static int
s_color_of (const char *service)
{
    uint32_t hash = 2166136261u;
    for (const unsigned char *p = (const unsigned char *) service; *p; p++)
        hash = (hash ^ *p) * 16777619u;
    return s_palette [hash % (sizeof s_palette / sizeof s_palette [0])];
}

static void
s_print_prefix (pm_lines_t *self, const char *service, pm_stream_t stream)
{
    int len = (int) strlen (service);
    if (self->color)
        fprintf (self->out, "\033[%dm%s\033[0m", s_color_of (service),
                 service);
    else
        fputs (service, self->out);
    fprintf (self->out, "%*s ", self->width > len ? self->width - len : 0,
             "");
    if (stream == PM_STREAM_ERR)
        fputs (self->color ? "\033[31m!\033[0m " : "! ", self->out);
    else
        fputs ("| ", self->out);
}

//  Length of the valid UTF-8 sequence at text (1..4), or 0 if the bytes
//  there do not start one: overlong forms, surrogates and code points
//  over U+10FFFF are invalid, as in JSON.
static size_t
s_utf8_next (const unsigned char *text, size_t size)
{
    unsigned char c = text [0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    unsigned code;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        code = c & 0x1F;
        min = 0x80;
    }
    else
    if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        code = c & 0x0F;
        min = 0x800;
    }
    else
    if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        code = c & 0x07;
        min = 0x10000;
    }
    else
        return 0;
    if (size < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((text [i] & 0xC0) != 0x80)
            return 0;
        code = (code << 6) | (text [i] & 0x3F);
    }
    if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return len;
}

//  Writes bytes as a JSON string: '"', '\' and control characters
//  escaped, valid UTF-8 as it is, each other byte as \ufffd.  Returns
//  true if every byte was valid UTF-8.
static bool
s_json_string (FILE *out, const char *bytes, size_t size)
{
    const unsigned char *text = (const unsigned char *) bytes;
    bool valid = true;
    fputc ('"', out);
    for (size_t i = 0; i < size; ) {
        unsigned char c = text [i];
        if (c == '"' || c == '\\') {
            fputc ('\\', out);
            fputc (c, out);
            i++;
        }
        else
        if (c < 0x20) {
            switch (c) {
                case '\n': fputs ("\\n", out); break;
                case '\r': fputs ("\\r", out); break;
                case '\t': fputs ("\\t", out); break;
                case '\b': fputs ("\\b", out); break;
                case '\f': fputs ("\\f", out); break;
                default:   fprintf (out, "\\u%04x", c); break;
            }
            i++;
        }
        else {
            size_t len = s_utf8_next (text + i, size - i);
            if (len == 0) {
                fputs ("\\ufffd", out);
                valid = false;
                i++;
            }
            else {
                fwrite (text + i, 1, len, out);
                i += len;
            }
        }
    }
    fputc ('"', out);
    return valid;
}

static void
s_base64 (FILE *out, const unsigned char *data, size_t size)
{
    static const char digits [] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < size; i += 3) {
        unsigned value = (unsigned) data [i] << 16;
        if (i + 1 < size)
            value |= (unsigned) data [i + 1] << 8;
        if (i + 2 < size)
            value |= data [i + 2];
        fputc (digits [(value >> 18) & 63], out);
        fputc (digits [(value >> 12) & 63], out);
        fputc (i + 1 < size ? digits [(value >> 6) & 63] : '=', out);
        fputc (i + 2 < size ? digits [value & 63] : '=', out);
    }
}

static void
s_print_json (pm_lines_t *self, const char *service, const pm_line_t *line)
{
    FILE *out = self->out;
    fputs ("{\"service\":", out);
    s_json_string (out, service, strlen (service));
    fprintf (out, ",\"seq\":%llu,\"ts\":%.6f,\"stream\":\"%s\",\"line\":",
             (unsigned long long) line->seq, line->ts,
             pm_stream_name (line->stream));
    const char *data = line->line ? line->line : "";
    if (!s_json_string (out, data, line->line_size)) {
        fputs (",\"line_base64\":\"", out);
        s_base64 (out, (const unsigned char *) data, line->line_size);
        fputc ('"', out);
    }
    if (line->partial)
        fputs (",\"partial\":true", out);
    fputs ("}\n", out);
}

void
pm_lines_print (pm_lines_t *self, const char *service,
                const pm_line_t *line)
{
    if (self->json) {
        s_print_json (self, service, line);
        return;
    }
    bool continues = self->open_service
                  && strcmp (self->open_service, service) == 0
                  && self->open_stream == line->stream;
    if (!continues) {
        s_close_line (self);
        if (self->prefix)
            s_print_prefix (self, service, line->stream);
    }
    if (line->line_size)
        fwrite (line->line, 1, line->line_size, self->out);
    if (line->partial) {
        if (!continues) {
            self->open_service = strdup (service);
            if (!self->open_service)
                abort ();
            self->open_stream = line->stream;
        }
    }
    else {
        free (self->open_service);
        self->open_service = NULL;
        fputc ('\n', self->out);
    }
}

void
pm_lines_gone (pm_lines_t *self, const char *service, uint64_t from,
               uint64_t to, pm_lines_loss_t loss)
{
    if (to < from)
        return;
    if (self->json) {
        fputs ("{\"service\":", self->out);
        s_json_string (self->out, service, strlen (service));
        fprintf (self->out, ",\"gone\":[%llu,%llu]}\n",
                 (unsigned long long) from, (unsigned long long) to);
        return;
    }
    //  Stdout first, so that on a terminal the message lands where the
    //  lines are missing.
    s_close_line (self);
    fflush (self->out);
    unsigned long long count = (unsigned long long) (to - from) + 1;
    bool one = count == 1;
    const char *why = loss == PM_LINES_TOO_LARGE
        ? (one ? "is too large for a reply (see the log file)"
               : "are too large for a reply (see the log file)")
        : (one ? "is no longer in memory (see the log file)"
               : "are no longer in memory (see the log file)");
    if (one)
        fprintf (self->err, "-- %s: 1 line (%llu) %s --\n", service,
                 (unsigned long long) from, why);
    else
        fprintf (self->err, "-- %s: %llu lines (%llu..%llu) %s --\n",
                 service, count, (unsigned long long) from,
                 (unsigned long long) to, why);
    fflush (self->err);
}
