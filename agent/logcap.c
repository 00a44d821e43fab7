/*  logcap.c - a service's output (logcap.h)

    Reading: each readable pipe is read in 64 KiB chunks until it would
    block, so a chatty service never fills its pipe while the agent is
    busy elsewhere for long.  Lines are cut at '\n'; an unfinished line
    waits in a per-stream buffer, bounded by log_line_max.

    Writing: the lines of one read are formatted into one buffer and
    written with one write(), which keeps the file's lines whole and costs
    one system call per chunk rather than per line.

    Rotation: before a line would take the file past log_max_size, what is
    buffered is written and the file is rotated (logfile.c), so a line is
    never split across two files.  A single line larger than the limit
    goes whole into a fresh file.

    A line goes to the ring and to subscribers whether or not the file
    could take it: a full disk costs the file its lines, not the others.
    Subscribers get the lines of one read as one message (logbatch.c).
*/
#include "logcap.h"
#include "agentlog.h"
#include "echo.h"
#include "logbatch.h"
#include "logfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define s_CHUNK (64 * 1024)

typedef struct {
    int fd;                   /* read end, owned, -1 when closed */
    char *partial;            /* unfinished line, line_max bytes, malloc'd
                                 when a line first waits (a quiet service
                                 costs no page for it), or NULL */
    size_t partial_size;
    char *held;               /* text file: the cut pieces of a line not yet
                                 ended, written whole when it ends */
    size_t held_size;
    size_t held_cap;
} s_stream_t;

/*  A line longer than this goes into a text file in pieces, each ended by
    a newline: the price of bounded memory. */
#define s_HELD_MAX (1024 * 1024)

struct pm_logcap_t {
    zloop_t *loop;            /* not owned */
    char *service;            /* owned */
    pm_logfile_t *file;       /* owned */
    pm_config_log_t settings;
    pm_logring_t *ring;       /* recent lines, owned */
    uint64_t bytes_in;        /* read from the pipes */
    pm_publish_t *pub;        /* not owned, may be NULL */
    pm_logbatch_t *batch;     /* lines on their way to pub, owned, or NULL */
    s_stream_t streams [2];   /* out, err */
    uint64_t seq;             /* last line's seq */
    char *out;                /* file output buffer, NULL until a line */
    size_t out_size;
    size_t out_cap;
    bool echo;                /* also print to stdout (echo.h) */
    int echo_width;
    double ts;                /* timestamp of the chunk being handled */
    char stamp [48];          /* text timestamp of the chunk at stamp_ts */
    size_t stamp_size;
    double stamp_ts;
    pm_logcap_line_fn *line_fn;   /* told of every line, or NULL */
    void *line_arg;
};

pm_logcap_t *
pm_logcap_new (zloop_t *loop, const char *service, const char *path,
               const pm_config_log_t *settings, pm_publish_t *pub, char *err,
               size_t errlen)
{
    pm_logfile_t *file = pm_logfile_new (service, path, settings, pub, err,
                                         errlen);
    if (!file)
        return NULL;
    pm_logcap_t *self = calloc (1, sizeof *self);
    assert (self);
    self->loop = loop;
    self->service = strdup (service);
    self->file = file;
    self->settings = *settings;
    if (self->settings.line_max == 0)
        self->settings.line_max = PM_LOG_LINE_MAX_DEFAULT;
    self->ring = pm_logring_new (settings->ring, settings->ring_bytes);
    self->pub = pub;
    if (pub)
        self->batch = pm_logbatch_new (pub, service);
    for (int i = 0; i < 2; i++) {
        self->streams [i].fd = -1;
    }
    return self;
}

static void
s_flush (pm_logcap_t *self)
{
    pm_logfile_write (self->file, self->out, self->out_size);
    self->out_size = 0;
}

//  Makes room for an entry of size bytes in the current file, rotating
//  first if it would pass log_max_size.
static void
s_before_entry (pm_logcap_t *self, size_t size)
{
    if (pm_logfile_is_full (self->file, self->out_size, size)) {
        s_flush (self);
        pm_logfile_rotate (self->file);
    }
}

static void
s_reserve (pm_logcap_t *self, size_t more)
{
    if (self->out_size + more <= self->out_cap)
        return;
    //  Made at the first line: a quiet service costs no buffer.
    if (self->out_cap == 0)
        self->out_cap = 2 * s_CHUNK;
    while (self->out_size + more > self->out_cap)
        self->out_cap *= 2;
    self->out = realloc (self->out, self->out_cap);
    assert (self->out);
}

//  Appends text as a JSON string (logfile.h says how).
static void
s_json_string (pm_logcap_t *self, const char *text, size_t size)
{
    s_reserve (self, size * 6 + 2);
    self->out_size += pm_logfile_json_string (self->out + self->out_size,
                                              text, size);
}

static size_t
s_timestamp (char *buf, size_t size, double ts)
{
    time_t seconds = (time_t) ts;
    struct tm tm;
    gmtime_r (&seconds, &tm);
    size_t n = strftime (buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t) snprintf (buf + n, size - n, ".%06ldZ ",
                            (long) ((ts - (double) seconds) * 1e6));
    return n;
}

static void
s_hold (s_stream_t *stream, const char *data, size_t size)
{
    if (size == 0)
        return;
    if (stream->held_size + size > stream->held_cap) {
        size_t cap = stream->held_cap ? stream->held_cap : 4096;
        while (cap < stream->held_size + size)
            cap *= 2;
        stream->held = realloc (stream->held, cap);
        assert (stream->held);
        stream->held_cap = cap;
    }
    memcpy (stream->held + stream->held_size, data, size);
    stream->held_size += size;
}

//  Writes what a stream holds, ended by a newline, as one entry.
static void
s_write_held (pm_logcap_t *self, s_stream_t *stream)
{
    s_before_entry (self, stream->held_size + 1);
    s_reserve (self, stream->held_size + 1);
    memcpy (self->out + self->out_size, stream->held, stream->held_size);
    self->out_size += stream->held_size;
    self->out [self->out_size++] = '\n';
    stream->held_size = 0;
}

//  A text entry: the line as written, optionally after its time.  The cut
//  pieces of a long line are held until it ends, so the other stream's
//  lines never land in the middle of it and rotation never splits it.
static void
s_text_entry (pm_logcap_t *self, s_stream_t *stream, const char *line,
              size_t size, bool partial)
{
    //  The time is the chunk's: formatted once per chunk, not per line.
    if (self->settings.timestamps && self->stamp_ts != self->ts) {
        self->stamp_size = s_timestamp (self->stamp, sizeof self->stamp,
                                        self->ts);
        self->stamp_ts = self->ts;
    }
    size_t stamp = self->settings.timestamps ? self->stamp_size : 0;
    if (!partial && stream->held_size == 0) {
        //  The usual case, a whole line: straight into the output.
        s_before_entry (self, stamp + size + 1);
        s_reserve (self, stamp + size + 1);
        memcpy (self->out + self->out_size, self->stamp, stamp);
        memcpy (self->out + self->out_size + stamp, line, size);
        self->out_size += stamp + size;
        self->out [self->out_size++] = '\n';
        return;
    }
    if (stream->held_size == 0)
        s_hold (stream, self->stamp, stamp);
    s_hold (stream, line, size);
    if (!partial || stream->held_size >= s_HELD_MAX)
        s_write_held (self, stream);
}

static void
s_line (pm_logcap_t *self, pm_stream_t stream, const char *line, size_t size,
        bool partial)
{
    uint64_t seq = ++self->seq;
    if (self->settings.format == PM_LOG_JSON) {
        //  Rotation counts what the entry will take: at most six bytes per
        //  byte of line, plus its fields.
        s_before_entry (self, size * 6 + 160);
        s_reserve (self, 256);
        self->out_size += (size_t) snprintf (
            self->out + self->out_size, self->out_cap - self->out_size,
            "{\"ts\":%.6f,\"service\":", self->ts);
        s_json_string (self, self->service, strlen (self->service));
        s_reserve (self, 128);
        self->out_size += (size_t) snprintf (
            self->out + self->out_size, self->out_cap - self->out_size,
            ",\"stream\":\"%s\",\"seq\":%llu,%s\"line\":",
            pm_stream_name (stream), (unsigned long long) seq,
            partial ? "\"partial\":true," : "");
        s_json_string (self, line, size);
        s_reserve (self, 2);
        self->out [self->out_size++] = '}';
        self->out [self->out_size++] = '\n';
    }
    else
        s_text_entry (self, &self->streams [stream], line, size, partial);
    if (self->echo)
        pm_echo_line (self->service, self->echo_width, line, size);
    pm_logring_push (self->ring, seq, self->ts, (int) stream, partial, line,
                     size);
    if (self->batch)
        pm_logbatch_add (self->batch, seq, self->ts, stream, line, size,
                         partial);
    if (self->line_fn)
        self->line_fn (self->line_arg, line, size);
}

//  Splits data into lines for stream i.  A line longer than line_max is
//  cut into pieces of line_max bytes; a piece is marked partial only when
//  more of the line follows (known when its next byte arrives), so a line
//  of exactly N pieces still ends with an unmarked one.
static void
s_feed (pm_logcap_t *self, int i, const char *data, size_t size)
{
    s_stream_t *stream = &self->streams [i];
    size_t max = self->settings.line_max;
    while (size > 0) {
        if (stream->partial_size == 0) {
            //  A whole line in the chunk: no copy.
            const char *newline = memchr (data, '\n',
                                          size < max + 1 ? size : max + 1);
            if (newline) {
                size_t len = (size_t) (newline - data);
                s_line (self, (pm_stream_t) i, data, len, false);
                data += len + 1;
                size -= len + 1;
                continue;
            }
        }
        if (stream->partial_size == max) {
            //  Full: the next byte says whether this was the last piece.
            bool ends = *data == '\n';
            s_line (self, (pm_stream_t) i, stream->partial, max, !ends);
            stream->partial_size = 0;
            if (ends) {
                data++;
                size--;
            }
            continue;
        }
        if (!stream->partial) {
            stream->partial = malloc (max);
            assert (stream->partial);
        }
        size_t room = max - stream->partial_size;
        size_t take = size < room ? size : room;
        const char *newline = memchr (data, '\n', take);
        if (newline)
            take = (size_t) (newline - data);
        memcpy (stream->partial + stream->partial_size, data, take);
        stream->partial_size += take;
        data += take;
        size -= take;
        if (newline) {
            s_line (self, (pm_stream_t) i, stream->partial,
                    stream->partial_size, false);
            stream->partial_size = 0;
            data++;
            size--;
        }
    }
}

static void
s_close_stream (pm_logcap_t *self, int i)
{
    s_stream_t *stream = &self->streams [i];
    if (stream->fd == -1)
        return;
    zmq_pollitem_t item = { NULL, stream->fd, ZMQ_POLLIN, 0 };
    zloop_poller_end (self->loop, &item);
    close (stream->fd);
    stream->fd = -1;
}

//  Reads stream i until it would block or closes, or max_chunks chunks
//  were read (0: no limit).  Returns bytes read.
static size_t
s_read (pm_logcap_t *self, int i, int max_chunks)
{
    s_stream_t *stream = &self->streams [i];
    char chunk [s_CHUNK];
    size_t total = 0;
    int chunks = 0;
    while (stream->fd != -1 && (max_chunks == 0 || chunks++ < max_chunks)) {
        ssize_t got = read (stream->fd, chunk, sizeof chunk);
        if (got == -1 && errno == EINTR)
            continue;
        if (got == -1 && errno == EAGAIN)
            break;
        if (got <= 0) {
            s_close_stream (self, i);
            break;
        }
        self->ts = pm_wall_clock ();
        self->bytes_in += (uint64_t) got;
        if (self->pub)
            pm_publish_refresh (self->pub);
        s_feed (self, i, chunk, (size_t) got);
        s_flush (self);
        if (self->batch)
            pm_logbatch_send (self->batch);
        total += (size_t) got;
        //  A short read means the pipe is empty for now.
        if ((size_t) got < sizeof chunk)
            break;
    }
    return total;
}

static int
s_on_readable (zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    pm_logcap_t *self = (pm_logcap_t *) arg;
    int i = item->fd == self->streams [0].fd ? 0 : 1;
    //  Bounded, so one chatty service cannot keep the loop from the rest.
    s_read (self, i, 16);
    if (self->echo)
        pm_echo_flush ();
    return 0;
}

//  Ends the unfinished line of stream i, if any.
static void
s_finish_line (pm_logcap_t *self, int i)
{
    s_stream_t *stream = &self->streams [i];
    if (stream->partial_size == 0) {
        //  A line cut at exactly line_max whose end never came.
        if (stream->held_size)
            s_write_held (self, stream);
        return;
    }
    self->ts = pm_wall_clock ();
    s_line (self, (pm_stream_t) i, stream->partial, stream->partial_size,
            false);
    stream->partial_size = 0;
}

void
pm_logcap_drain (pm_logcap_t *self)
{
    //  Everything the exited process wrote is in the pipe, and a pipe
    //  holds at most 1 MiB (the system's pipe-max-size default): reading
    //  at most that much means a grandchild that keeps writing into an
    //  inherited pipe cannot hold the agent here.
    for (int i = 0; i < 2; i++)
        if (self->streams [i].fd != -1)
            s_read (self, i, 1024 * 1024 / s_CHUNK + 1);
    for (int i = 0; i < 2; i++)
        s_finish_line (self, i);
    s_flush (self);
    if (self->batch)
        pm_logbatch_send (self->batch);
    if (self->echo)
        pm_echo_flush ();
}

void
pm_logcap_attach (pm_logcap_t *self, int out_fd, int err_fd)
{
    pm_logcap_drain (self);
    int fds [2] = { out_fd, err_fd };
    for (int i = 0; i < 2; i++) {
        s_close_stream (self, i);
        self->streams [i].fd = fds [i];
        zmq_pollitem_t item = { NULL, fds [i], ZMQ_POLLIN, 0 };
        //  Tolerant: a closed writer shows as POLLHUP ("error" to zloop,
        //  which would drop the poller before the data is read).
        if (zloop_poller (self->loop, &item, s_on_readable, self) == 0)
            zloop_poller_set_tolerant (self->loop, &item);
        else
            pm_log_error ("%s: cannot watch output pipe: %s", self->service,
                          strerror (errno));
    }
}

void
pm_logcap_set_echo (pm_logcap_t *self, bool echo, int width)
{
    self->echo = echo;
    self->echo_width = width;
}

int
pm_logcap_update (pm_logcap_t *self, const char *path,
                  const pm_config_log_t *settings, char *err, size_t errlen)
{
    s_flush (self);
    if (pm_logfile_reopen (self->file, path, err, errlen) == -1)
        return -1;
    pm_config_log_t next = *settings;
    if (next.line_max == 0)
        next.line_max = PM_LOG_LINE_MAX_DEFAULT;
    if (next.line_max != self->settings.line_max) {
        for (int i = 0; i < 2; i++) {
            //  An unfinished line longer than the new limit ends here.
            if (self->streams [i].partial_size > next.line_max) {
                self->ts = pm_wall_clock ();
                s_line (self, (pm_stream_t) i, self->streams [i].partial,
                        self->streams [i].partial_size, true);
                self->streams [i].partial_size = 0;
            }
            if (self->streams [i].partial) {
                self->streams [i].partial = realloc (self->streams [i].partial,
                                                     next.line_max);
                assert (self->streams [i].partial);
            }
        }
        s_flush (self);
    }
    if (next.ring != self->settings.ring
    ||  next.ring_bytes != self->settings.ring_bytes) {
        pm_logring_destroy (&self->ring);
        self->ring = pm_logring_new (next.ring, next.ring_bytes);
    }
    self->settings = next;
    pm_logfile_set_settings (self->file, &next);
    return 0;
}

void
pm_logcap_set_line_fn (pm_logcap_t *self, pm_logcap_line_fn *fn, void *arg)
{
    self->line_fn = fn;
    self->line_arg = arg;
}

const pm_logring_t *
pm_logcap_ring (const pm_logcap_t *self)
{
    return self->ring;
}

uint64_t
pm_logcap_bytes_in (const pm_logcap_t *self)
{
    return self->bytes_in;
}

uint64_t
pm_logcap_seq (const pm_logcap_t *self)
{
    return self->seq;
}

void
pm_logcap_set_seq (pm_logcap_t *self, uint64_t seq)
{
    self->seq = seq;
}

bool
pm_logcap_is_open (const pm_logcap_t *self)
{
    return self->streams [0].fd != -1 || self->streams [1].fd != -1;
}

void
pm_logcap_destroy (pm_logcap_t **self_p)
{
    pm_logcap_t *self = *self_p;
    if (!self)
        return;
    pm_logcap_drain (self);
    for (int i = 0; i < 2; i++) {
        s_close_stream (self, i);
        free (self->streams [i].partial);
        free (self->streams [i].held);
    }
    s_flush (self);
    pm_logbatch_destroy (&self->batch);
    pm_logfile_destroy (&self->file);
    pm_logring_destroy (&self->ring);
    free (self->out);
    free (self->service);
    free (self);
    *self_p = NULL;
}
