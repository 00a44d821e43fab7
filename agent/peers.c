/*  peers.c - subscribers by connection, cut when their key goes (peers.h) */
#include "peers.h"
#include "agentlog.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct {
    int fd;
    char key [41];                    /* Z85 public key */
    struct sockaddr_storage peer;     /* the connection's far end */
    socklen_t peer_len;
} s_peer_t;

struct pm_peers_t {
    s_peer_t *peers;
    size_t count, cap;
    size_t checked_at;                /* count at the last sweep */
};

pm_peers_t *
pm_peers_new (void)
{
    pm_peers_t *self = calloc (1, sizeof *self);
    assert (self);
    return self;
}

void
pm_peers_destroy (pm_peers_t **self_p)
{
    pm_peers_t *self = *self_p;
    if (!self)
        return;
    free (self->peers);
    free (self);
    *self_p = NULL;
}

//  True if fd is still the connection noted in peer.
static bool
s_same (const s_peer_t *peer)
{
    struct sockaddr_storage now;
    socklen_t len = sizeof now;
    return getpeername (peer->fd, (struct sockaddr *) &now, &len) == 0
        && len == peer->peer_len && memcmp (&now, &peer->peer, len) == 0;
}

//  Forgets the connections that closed.
static void
s_sweep (pm_peers_t *self)
{
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++)
        if (s_same (&self->peers [i]))
            self->peers [kept++] = self->peers [i];
    self->count = kept;
    self->checked_at = kept;
}

void
pm_peers_note (pm_peers_t *self, zmq_msg_t *msg)
{
    const char *key = zmq_msg_gets (msg, "User-Id");
    int fd = zmq_msg_get (msg, ZMQ_SRCFD);
    if (!key || strlen (key) != 40 || fd < 0)
        return;
    s_peer_t peer = { fd, "", { 0 }, sizeof peer.peer };
    memcpy (peer.key, key, 41);
    if (getpeername (fd, (struct sockaddr *) &peer.peer, &peer.peer_len) == -1)
        return;
    for (size_t i = 0; i < self->count; i++)
        if (self->peers [i].fd == fd) {
            self->peers [i] = peer;   //  the same, or a reuse of the fd
            return;
        }
    //  Closed connections are found when the list has doubled since.
    if (self->count >= 2 * self->checked_at + 16)
        s_sweep (self);
    if (self->count == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 16;
        self->peers = realloc (self->peers, self->cap * sizeof *self->peers);
        assert (self->peers);
    }
    self->peers [self->count++] = peer;
}

size_t
pm_peers_cut (pm_peers_t *self, bool (*allowed) (void *arg, const char *key),
              void *arg)
{
    s_sweep (self);
    size_t cut = 0, kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_peer_t *peer = &self->peers [i];
        if (!allowed (arg, peer->key)) {
            pm_log_info ("events: key %s is no longer authorised: its "
                         "subscription (descriptor %d) is cut", peer->key,
                         peer->fd);
            shutdown (peer->fd, SHUT_RDWR);
            cut++;
        }
        else
            self->peers [kept++] = *peer;
    }
    self->count = kept;
    self->checked_at = kept;
    return cut;
}

size_t
pm_peers_count (const pm_peers_t *self)
{
    return self->count;
}
