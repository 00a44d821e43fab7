/*  pm_link.h - the words of the link between an agent and a broker

    An agent connects a DEALER to the broker's agents endpoint (a ROUTER)
    and the two exchange multi-frame messages whose first frame is one of
    these words (PROTOCOL.md 13):

    agent -> broker
      REGISTER instance hello name...  who it is: its instance (a text
                                       unique to this run of the agent),
                                       its hello reply (msgpack, as over
                                       the control socket), its services
      HEARTBEAT                        every heartbeat interval
      REPLY token reply                the reply to a REQUEST, token echoed
      PUBLISH topic body               a message of its events socket
                                       that a SUBSCRIBE asked for

    broker -> agent
      REGISTERED heartbeat_ms prefix...  accepted; the heartbeat interval
                                       in ms, and what the broker's
                                       subscribers want so far
      REFUSED message                  the name is held by a live agent
      UNKNOWN                          a message from an agent that is not
                                       registered (after a broker restart):
                                       register again
      REQUEST token request            a request to answer with REPLY
      SUBSCRIBE prefix                 publish topics prefix starts, too
      UNSUBSCRIBE prefix               no longer
*/
#ifndef PM_LINK_H
#define PM_LINK_H

#include "pm_proto.h"

#include <stddef.h>
#include <stdint.h>

#define PM_LINK_REGISTER    "REGISTER"
#define PM_LINK_HEARTBEAT   "HEARTBEAT"
#define PM_LINK_REPLY       "REPLY"
#define PM_LINK_PUBLISH     "PUBLISH"
#define PM_LINK_REGISTERED  "REGISTERED"
#define PM_LINK_REFUSED     "REFUSED"
#define PM_LINK_UNKNOWN     "UNKNOWN"
#define PM_LINK_REQUEST     "REQUEST"
#define PM_LINK_SUBSCRIBE   "SUBSCRIBE"
#define PM_LINK_UNSUBSCRIBE "UNSUBSCRIBE"

/*  How long the agent waits between heartbeats before the broker says
    (REGISTERED) and how many missed make an agent unreachable. */
#define PM_LINK_HEARTBEAT_MS 1000
#define PM_LINK_MISSED 3

/*  Longest heartbeat interval a REGISTERED may set (10 minutes). */
#define PM_LINK_HEARTBEAT_MAX_MS 600000

/*  One frame of a link message, as received. */
typedef struct {
    const void *data;
    size_t size;
} pm_link_frame_t;

typedef enum {
    PM_LINK_W_NONE = 0,       /* not a message: see pm_link_parse's why */
    PM_LINK_W_REGISTER,
    PM_LINK_W_HEARTBEAT,
    PM_LINK_W_REPLY,
    PM_LINK_W_PUBLISH,
    PM_LINK_W_REGISTERED,
    PM_LINK_W_REFUSED,
    PM_LINK_W_UNKNOWN,
    PM_LINK_W_REQUEST,
    PM_LINK_W_SUBSCRIBE,
    PM_LINK_W_UNSUBSCRIBE
} pm_link_word_t;

/*  Size of the token of a REQUEST and its REPLY: the broker's 8 bytes. */
#define PM_LINK_TOKEN_SIZE 8

/*  A link message, checked.  Frames point into the message parsed (they
    live as long as it does); what is owned is freed by pm_link_clear. */
typedef struct {
    pm_link_word_t word;
    /*  REGISTER: the instance (1 to PM_INSTANCE_MAX bytes of text), the
        hello reply (decoded; its agent a valid agent name), the service
        names (0 to PM_NAMES_MAX, each 1 to PM_NAME_MAX bytes of text). */
    char instance [PM_INSTANCE_MAX + 1];
    pm_reply_t *hello;                    /* owned */
    char **names;                         /* owned, names_count of them */
    size_t names_count;
    /*  REQUEST, REPLY: the token and the encoded request or reply (its
        decoding is the receiver's: an error there is answered, not
        dropped).  PUBLISH: topic (1 to PM_TOPIC_MAX bytes) and body.
        REFUSED: body is the reason (may be empty). */
    uint64_t token;
    pm_link_frame_t topic;
    pm_link_frame_t body;
    /*  REGISTERED: the heartbeat interval, then the prefixes the broker's
        subscribers want; SUBSCRIBE, UNSUBSCRIBE: one prefix.  Each
        prefix 0 to PM_TOPIC_MAX bytes. */
    uint64_t heartbeat_ms;
    const pm_link_frame_t *prefixes;
    size_t prefixes_count;
} pm_link_msg_t;

/*  Checks the frames of one link message (the word first, no routing
    frame) and fills msg.  Returns 0, or -1 with msg->word PM_LINK_W_NONE,
    nothing owned, and what is wrong in why: an unknown word, a frame
    too many or too few, a field over its limit or not valid.  Never
    reads past a frame's size. */
int pm_link_parse (const pm_link_frame_t *frames, size_t count,
                   pm_link_msg_t *msg, char *why, size_t whylen);

/*  Frees what msg owns and clears it. */
void pm_link_clear (pm_link_msg_t *msg);

#endif
