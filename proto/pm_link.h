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

#endif
