/* tests/rt_seq.h - counting a numbered stream as the realtime end-to-end
   tests publish it ("1", "2", ... as the data): a subscriber's seq_log says
   how many arrived, how many again (dups) or after a hole (gaps), and the
   resets. Subscribe with on_numbered and a seq_log as user, its next set to
   the first number. Include after rtws.h. */
#ifndef RTWS_TESTS_RT_SEQ_H
#define RTWS_TESTS_RT_SEQ_H
#include <stdlib.h>

typedef struct seq_log {
    long next; /* the number expected next */
    long got, dups, gaps, resets;
} seq_log;

static void on_numbered(rtws_rt *rt, const rtws_rt_message *m, void *user) {
    seq_log *L = (seq_log *)user;
    long n;
    (void)rt;
    if (m->reset) {
        L->resets++;
        return;
    }
    n = strtol(m->data, NULL, 10);
    if (n < L->next) L->dups++;
    else if (n > L->next) L->gaps++;
    L->next = n + 1;
    L->got++;
}
#endif
