/*  config_values.c - the values of the keys that take numbers, names
    and probes (see config.h, config_int.h)

    Owns: stop_signal, stop_timeout, restart and its tuning, the log_*
    keys (shared by the agent group and services), and the ready / alive
    probe groups, whose tcp and http hosts are resolved here (getaddrinfo,
    at load only).  Each checks type and range and fails with the file,
    the line, the key and what was expected.

    Leaves to others: which group a key belongs to and the order keys are
    read in (config.c for the agent group, config_service.c for a
    service), the error format and typed reads (config_setting.c), and
    what the values mean at run time (supervisor, probes, logcap).  Talks
    to libconfig, libpmproto (signal names) and the resolver.
*/
#include "config_int.h"

#include <errno.h>
#include <netdb.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
s_log_format (pm_cfg_ctx_t *ctx, const config_setting_t *member,
              pm_log_format_t *format)
{
    const char *value = config_setting_type (member) == CONFIG_TYPE_STRING
                      ? config_setting_get_string (member) : "";
    if (pm_cfg_streq (value, "text"))
        *format = PM_LOG_TEXT;
    else
    if (pm_cfg_streq (value, "json"))
        *format = PM_LOG_JSON;
    else
        return pm_cfg_fail (ctx, member, "expected \"text\" or \"json\"");
    return 0;
}

//  A whole number in [min, max]: an integer, or for sizes also a string
//  with a K, M or G suffix (powers of 1024).
int
pm_cfg_count (pm_cfg_ctx_t *ctx, const config_setting_t *member, bool size,
         uint64_t min, uint64_t max, uint64_t *value)
{
    long long number;
    if (pm_cfg_is_integer (member))
        number = config_setting_get_int64 (member);
    else
    if (size && config_setting_type (member) == CONFIG_TYPE_STRING) {
        const char *text = config_setting_get_string (member);
        char *end;
        errno = 0;
        number = strtoll (text, &end, 10);
        if (end == text || errno)
            number = -1;
        else
        if (*end == 'K' || *end == 'k')
            number *= 1024, end++;
        else
        if (*end == 'M' || *end == 'm')
            number *= 1024 * 1024, end++;
        else
        if (*end == 'G' || *end == 'g')
            number *= 1024LL * 1024 * 1024, end++;
        if (*end)
            number = -1;
        if (number < 0)
            return pm_cfg_fail (ctx, member, "expected a size like 1048576, "
                           "\"512K\", \"10M\" or \"1G\"");
    }
    else
        return pm_cfg_fail (ctx, member, "expected %s, not %s",
                       size ? "a size in bytes" : "a whole number",
                       pm_cfg_type_name (member));
    if (number < 0 || (uint64_t) number < min || (uint64_t) number > max)
        return pm_cfg_fail (ctx, member, "expected %s%llu to %llu",
                       size ? "a size from " : "",
                       (unsigned long long) min, (unsigned long long) max);
    *value = (uint64_t) number;
    return 0;
}

//  The log_* keys, shared by agent and services; the last branch of both
//  readers, so any other key is unknown.
int
pm_cfg_log_key (pm_cfg_ctx_t *ctx, const config_setting_t *member, pm_config_log_t *log)
{
    const char *key = member->name;
    uint64_t value;
    if (pm_cfg_streq (key, "log_format"))
        return s_log_format (ctx, member, &log->format);
    if (pm_cfg_streq (key, "log_timestamps"))
        return pm_cfg_bool (ctx, member, &log->timestamps);
    if (pm_cfg_streq (key, "log_max_size")) {
        if (pm_cfg_count (ctx, member, true, 0, 1ULL << 40, &value))
            return -1;
        if (value && value < 4096)
            return pm_cfg_fail (ctx, member, "expected 0 (never rotate) or at "
                           "least 4096 bytes");
        log->max_size = value;
        return 0;
    }
    if (pm_cfg_streq (key, "log_backups")) {
        if (pm_cfg_count (ctx, member, false, 0, 100, &value))
            return -1;
        log->backups = (unsigned) value;
        return 0;
    }
    if (pm_cfg_streq (key, "log_line_max")) {
        //  At most 256 KiB: a line must fit one published message and
        //  one `logs` reply, both capped at 1 MiB on the wire.
        if (pm_cfg_count (ctx, member, true, 80, 256 * 1024, &value))
            return -1;
        log->line_max = (size_t) value;
        return 0;
    }
    if (pm_cfg_streq (key, "log_ring")) {
        if (pm_cfg_count (ctx, member, false, 0, 10 * 1000 * 1000, &value))
            return -1;
        log->ring = (size_t) value;
        return 0;
    }
    if (pm_cfg_streq (key, "log_ring_bytes")) {
        if (pm_cfg_count (ctx, member, true, 0, 1ULL << 32, &value))
            return -1;
        log->ring_bytes = (size_t) value;
        return 0;
    }
    return pm_cfg_fail (ctx, member, "unknown key '%s'", key);
}

int
pm_cfg_stop_signal (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
               pm_config_service_t *service)
{
    int signum;
    if (config_setting_type (setting) == CONFIG_TYPE_STRING) {
        const char *value = config_setting_get_string (setting);
        if (pm_signal_parse (value, &signum))
            return pm_cfg_fail (ctx, setting, "unknown signal '%s'", value);
    }
    else
    if (pm_cfg_is_integer (setting)) {
        //  Through the same parser as "15", so both forms accept the
        //  same numbers.
        char number [32];
        pm_cfg_decimal (setting, number, sizeof number);
        if (pm_signal_parse (number, &signum))
            return pm_cfg_fail (ctx, setting, "unknown signal %s", number);
    }
    else
        return pm_cfg_fail (ctx, setting, "expected a signal name (\"SIGINT\") or "
                       "number, not %s", pm_cfg_type_name (setting));
    service->stop_signal = signum;
    return 0;
}

//  A number of seconds, integer or float, of any value.
static int
s_number (pm_cfg_ctx_t *ctx, const config_setting_t *setting, double *value)
{
    if (!config_setting_is_number (setting))
        return pm_cfg_fail (ctx, setting, "expected a number of seconds, not %s",
                            pm_cfg_type_name (setting));
    *value = config_setting_type (setting) == CONFIG_TYPE_FLOAT
           ? config_setting_get_float (setting)
           : (double) config_setting_get_int64 (setting);
    return 0;
}

int
pm_cfg_stop_timeout (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
                pm_config_service_t *service)
{
    double value = 0;
    if (s_number (ctx, setting, &value))
        return -1;
    //  Written so that NaN fails too.
    if (!(value > 0 && value <= PM_CFG_STOP_TIMEOUT_MAX))
        return pm_cfg_fail (ctx, setting, "expected more than 0 and at most %g "
                       "seconds", PM_CFG_STOP_TIMEOUT_MAX);
    service->stop_timeout = value;
    return 0;
}

int
pm_cfg_restart (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
           pm_config_service_t *service)
{
    const char *value = config_setting_type (setting) == CONFIG_TYPE_STRING
                      ? config_setting_get_string (setting) : "";
    if (pm_cfg_streq (value, "no"))
        service->restart = PM_RESTART_NO;
    else
    if (pm_cfg_streq (value, "on-failure"))
        service->restart = PM_RESTART_ON_FAILURE;
    else
    if (pm_cfg_streq (value, "always"))
        service->restart = PM_RESTART_ALWAYS;
    else
        return pm_cfg_fail (ctx, setting,
                       "expected \"no\", \"on-failure\" or \"always\"");
    return 0;
}

//  A number of seconds in [min, max].
int
pm_cfg_seconds (pm_cfg_ctx_t *ctx, const config_setting_t *setting, double min,
           double max, double *value)
{
    double number = 0;
    if (s_number (ctx, setting, &number))
        return -1;
    if (!(number >= min && number <= max))
        return pm_cfg_fail (ctx, setting, "expected %g to %g seconds", min, max);
    *value = number;
    return 0;
}

//  "host:port" with a port of 1..65535.
static int
s_host_port (pm_cfg_ctx_t *ctx, const config_setting_t *setting, const char *text,
             size_t len, char **host, int *port)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (text [i] == ':')
            colon = text + i;
    char *end;
    long number = colon ? strtol (colon + 1, &end, 10) : 0;
    if (!colon || colon == text || end != text + len || number < 1
    ||  number > 65535)
        return pm_cfg_fail (ctx, setting, "expected \"host:port\" with a port "
                       "from 1 to 65535");
    size_t host_len = (size_t) (colon - text);
    //  [::1]:80
    if (text [0] == '[' && host_len > 2 && text [host_len - 1] == ']') {
        text++;
        host_len -= 2;
    }
    *host = pm_cfg_alloc (host_len + 1, 1);
    memcpy (*host, text, host_len);
    *port = (int) number;
    return 0;
}

//  The probe's host and port to an address, once, at load: the agent's
//  loop must never block on a lookup.  Numeric addresses and names in
//  /etc/hosts (localhost) need no network; other names may ask DNS, here
//  and never later.  The first answer is kept.
static int
s_resolve (pm_cfg_ctx_t *ctx, const config_setting_t *setting,
           pm_config_probe_t *probe)
{
    char port [16];
    snprintf (port, sizeof port, "%d", probe->port);
    struct addrinfo hints, *list = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo (probe->host, port, &hints, &list);
    if (rc != 0 || !list || list->ai_addrlen > sizeof probe->addr) {
        const char *why = rc == EAI_SYSTEM ? strerror (errno)
                        : rc != 0 ? gai_strerror (rc) : "no address";
        if (list)
            freeaddrinfo (list);
        return pm_cfg_fail (ctx, setting, "cannot resolve host '%s': %s",
                            probe->host, why);
    }
    memcpy (&probe->addr, list->ai_addr, list->ai_addrlen);
    probe->addrlen = list->ai_addrlen;
    freeaddrinfo (list);
    return 0;
}

int
pm_cfg_probe (pm_cfg_ctx_t *ctx, const config_setting_t *group, bool alive,
         pm_config_probe_t *probe)
{
    if (pm_cfg_expect_group (ctx, group))
        return -1;
    probe->line = (int) config_setting_source_line (group);
    probe->interval = alive ? 10.0 : 1.0;
    probe->timeout = 5.0;
    probe->deadline = alive ? 0 : 60.0;
    probe->failures = 3;
    const config_setting_t *kind_setting = NULL;
    int count = config_setting_length (group);
    for (int i = 0; i < count; i++) {
        const config_setting_t *member = config_setting_get_elem (group, i);
        const char *key = member->name;
        const char *value = NULL;
        pm_probe_kind_t kind = PM_PROBE_NONE;
        if (pm_cfg_streq (key, "exec"))
            kind = PM_PROBE_EXEC;
        else
        if (pm_cfg_streq (key, "tcp"))
            kind = PM_PROBE_TCP;
        else
        if (pm_cfg_streq (key, "http"))
            kind = PM_PROBE_HTTP;
        else
        if (pm_cfg_streq (key, "log"))
            kind = PM_PROBE_LOG;
        else
        if (pm_cfg_streq (key, "notify_fd"))
            kind = PM_PROBE_NOTIFY_FD;
        if (kind != PM_PROBE_NONE) {
            if (kind_setting)
                return pm_cfg_fail (ctx, member, "one kind of probe per group: "
                               "'%s' is already set", kind_setting->name);
            if (alive && (kind == PM_PROBE_LOG || kind == PM_PROBE_NOTIFY_FD))
                return pm_cfg_fail (ctx, member, "'%s' can only tell readiness, "
                               "use exec, tcp or http for liveness", key);
            kind_setting = member;
            probe->kind = kind;
        }
        if (kind == PM_PROBE_NOTIFY_FD) {
            if (!pm_cfg_is_integer (member))
                return pm_cfg_fail (ctx, member, "expected a file descriptor "
                               "number, not %s", pm_cfg_type_name (member));
            long long fd = config_setting_get_int64 (member);
            if (fd < 3 || fd > 255)
                return pm_cfg_fail (ctx, member, "expected a descriptor from 3 "
                               "to 255 (0, 1 and 2 are the standard streams)");
            probe->notify_fd = (int) fd;
        }
        else
        if (kind != PM_PROBE_NONE) {
            if (pm_cfg_string (ctx, member, &value))
                return -1;
            if (!*value)
                return pm_cfg_fail (ctx, member, "empty %s", key);
        }
        if (kind == PM_PROBE_EXEC)
            probe->command = pm_cfg_strdup (value);
        else
        if (kind == PM_PROBE_TCP) {
            if (s_host_port (ctx, member, value, strlen (value), &probe->host,
                             &probe->port))
                return -1;
        }
        else
        if (kind == PM_PROBE_HTTP) {
            if (strncmp (value, "http://", 7) != 0)
                return pm_cfg_fail (ctx, member, "expected \"http://host:port/path\""
                               " (https is not supported)");
            const char *rest = value + 7;
            size_t len = strcspn (rest, "/");
            if (s_host_port (ctx, member, rest, len, &probe->host,
                             &probe->port))
                return -1;
            probe->path = pm_cfg_strdup (rest [len] ? rest + len : "/");
        }
        else
        if (kind == PM_PROBE_LOG) {
            regex_t regex;
            int rc = regcomp (&regex, value, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char why [256];
                regerror (rc, &regex, why, sizeof why);
                return pm_cfg_fail (ctx, member, "bad regular expression: %s", why);
            }
            regfree (&regex);
            probe->regex = pm_cfg_strdup (value);
        }
        else
        if (kind == PM_PROBE_NONE) {
            int rc = 0;
            if (pm_cfg_streq (key, "initial_delay"))
                rc = pm_cfg_seconds (ctx, member, 0, 3600, &probe->initial_delay);
            else
            if (pm_cfg_streq (key, "interval"))
                rc = pm_cfg_seconds (ctx, member, 0.01, 3600, &probe->interval);
            else
            if (pm_cfg_streq (key, "timeout"))
                rc = pm_cfg_seconds (ctx, member, 0.01, 3600, &probe->timeout);
            else
            if (pm_cfg_streq (key, "deadline") && !alive)
                rc = pm_cfg_seconds (ctx, member, 0, 86400, &probe->deadline);
            else
            if (pm_cfg_streq (key, "failures") && alive) {
                uint64_t number;
                rc = pm_cfg_count (ctx, member, false, 1, 1000, &number);
                probe->failures = (unsigned) number;
            }
            else
                return pm_cfg_fail (ctx, member, "unknown key '%s' (a %s probe "
                               "takes exec, tcp, http%s, initial_delay, "
                               "interval, timeout and %s)", key,
                               alive ? "liveness" : "readiness",
                               alive ? "" : ", log, notify_fd",
                               alive ? "failures" : "deadline");
            if (rc)
                return -1;
        }
    }
    if (!kind_setting)
        return pm_cfg_fail (ctx, group, "no probe given (exec, tcp, http%s)",
                       alive ? "" : ", log or notify_fd");
    //  Last, so the group's other errors come first.
    if (probe->kind == PM_PROBE_TCP || probe->kind == PM_PROBE_HTTP)
        return s_resolve (ctx, kind_setting, probe);
    return 0;
}
