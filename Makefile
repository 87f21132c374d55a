# rtws - make [all] | test | fuzz | bench | run | install | uninstall | clean | fmt
CC      ?= cc
CXX     ?= c++
CLANG   ?= clang
PREFIX  ?= /usr/local
B       := build
VERSION := $(shell sed -n 's/^\#define RTWS_VERSION_STRING "\(.*\)"/\1/p' rtws.h)

WARN  := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wcast-qual -Werror
CWARN := $(WARN) -Wstrict-prototypes -Wmissing-prototypes
SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS  := detect_leaks=1:abort_on_error=0

TEST_CFLAGS := -std=c99 -g -O1 $(CWARN) $(SAN) -I.
EX_CFLAGS   := -std=c99 -O2 -g $(CWARN) -I.

UNIT_SRC  := $(wildcard tests/unit_*.c tests/conformance_*.c tests/e2e_*.c)
UNIT_BIN  := $(patsubst tests/%.c,$(B)/%,$(UNIT_SRC))
FUZZ_SRC  := $(wildcard fuzz/fuzz_*.c)
FUZZ_NAME := $(patsubst fuzz/%.c,%,$(FUZZ_SRC))
REPLAY    := $(patsubst %,$(B)/replay_%,$(FUZZ_NAME))
FUZZBIN   := $(patsubst %,$(B)/libfuzzer_%,$(FUZZ_NAME))
EXAMPLES  := $(patsubst examples/%.c,$(B)/%,$(wildcard examples/*.c))
# the five seed systems (examples/seeds/NAME/PROG.c -> build/seeds/NAME/PROG)
SEEDS     := $(patsubst examples/%.c,$(B)/%,$(wildcard examples/seeds/*/*.c))
# the portability suites (wine, qemu-user, the poll path, BSD simulated) run by make test-ports
PORTS     := tests/interop_windows.sh tests/interop_qemu.sh tests/interop_poll.sh tests/interop_bsdsim.sh
SCRIPTS   := $(filter-out $(PORTS),$(wildcard tests/interop_*.sh tests/interop_*.py))
FUZZ_SECONDS ?= 60
# targets with an open finding (input in fuzz/findings/, see CHANGELOG):
# replayed over their corpora by make test, not fuzzed by make fuzz until fixed
FUZZ_OPEN :=

# wss:// (layer 5): tests/tls_*.c and TLS builds of the examples, with BearSSL.
# For `make test` tests/tls_deps.sh installs libbearssl-dev when it can.
TLS_CHECK := $(if $(filter test,$(MAKECMDGOALS)),tests/tls_deps.sh --install,tests/tls_deps.sh)
BEARSSL   := $(shell $(TLS_CHECK) $(CC))
TLS_FLAGS := -DRTWS_USE_BEARSSL
TLS_LIBS  := -lbearssl
ifeq ($(BEARSSL),yes)
TLS_TESTS := $(patsubst tests/%.c,$(B)/%,$(wildcard tests/tls_*.c))
TLS_EX    := $(B)/tls_echo_server $(B)/tls_echo_client $(B)/asan_tls_echo_server
else
TLS_TESTS := tests/tls_missing.sh
TLS_EX    :=
endif

.PHONY: all test test-ports test-build unit compile-check fuzz bench soak run run-cluster install uninstall clean fmt examples
all: examples

examples: $(EXAMPLES) $(SEEDS) $(TLS_EX) $(B)/rtwscat
$(B)/seeds/%: examples/seeds/%.c rtws.h | $(B)
	@mkdir -p $(@D)
	$(CC) $(EX_CFLAGS) $< -o $@
$(B)/%: examples/%.c rtws.h | $(B)
	$(CC) $(EX_CFLAGS) $< -o $@
$(B)/tls_%: examples/%.c rtws.h | $(B)
	$(CC) $(EX_CFLAGS) $(TLS_FLAGS) $< -o $@ $(TLS_LIBS)
$(B)/asan_tls_%: examples/%.c rtws.h | $(B)
	$(CC) $(TEST_CFLAGS) $(TLS_FLAGS) $< -o $@ $(TLS_LIBS)

$(B):
	mkdir -p $(B)

# chat_server serves clients/js/rtws.js at /rtws.js from a copy compiled in:
# $(B)/rtws_js.h, one C string per line (\ " and ? escaped: no trigraphs)
$(B)/rtws_js.h: clients/js/rtws.js | $(B)
	sed -e 's/[\\"?]/\\&/g' -e 's/^/"/' -e 's/$$/",/' $< > $@.tmp && mv $@.tmp $@
$(B)/chat_server: examples/chat_server.c rtws.h $(B)/rtws_js.h | $(B)
	$(CC) $(EX_CFLAGS) -I$(B) $< -o $@
# rtwscat, the command-line client/server (tools/rtwscat.c): wss:// when BearSSL is there
RTWSCAT_TLS := $(if $(filter yes,$(BEARSSL)),$(TLS_FLAGS))
RTWSCAT_LIB := $(if $(filter yes,$(BEARSSL)),$(TLS_LIBS))
$(B)/rtwscat: tools/rtwscat.c rtws.h | $(B)
	$(CC) $(EX_CFLAGS) $(RTWSCAT_TLS) $< -o $@ $(RTWSCAT_LIB)
$(B)/asan_rtwscat: tools/rtwscat.c rtws.h | $(B)
	$(CC) $(TEST_CFLAGS) $(RTWSCAT_TLS) $< -o $@ $(RTWSCAT_LIB)

# the same examples under ASan+UBSan, for the conformance suite
ASAN_EX := $(B)/asan_echo_server $(B)/asan_autobahn_client
ASAN_EX += $(B)/asan_chat_server $(B)/asan_echo_client $(B)/asan_chat_client $(B)/asan_frame_loop
$(B)/asan_%: examples/%.c rtws.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@
$(B)/asan_chat_server: examples/chat_server.c rtws.h $(B)/rtws_js.h | $(B)
	$(CC) $(TEST_CFLAGS) -I$(B) $< -o $@

# --- test: everything, ending in one "N passed, M failed" line -------------
# The builds run side by side (JOBS, default: the cores), then tests/deps.sh
# installs the peers (so that tests running side by side never install at
# once), then the tests run TEST_JOBS at a time (default: the cores).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test:
	@$(MAKE) --no-print-directory -j$(JOBS) test-build
	@bash tests/deps.sh || true
	@tests/run.sh $(B)/compile_results $(UNIT_BIN) $(TLS_TESTS) \
	    $(patsubst %,$(B)/run_%,$(FUZZ_NAME)) $(SCRIPTS)
# test-ports: Windows under wine (mingw-w64), i686/aarch64/s390x (qemu-user)
# and every e2e test on the poll(2) path; each script installs its tools
# (root) and builds its own programs. CI runs it after make test.
test-ports:
	@tests/run.sh $(PORTS)
test-build: compile-check $(UNIT_BIN) $(REPLAY) $(EXAMPLES) $(SEEDS) $(ASAN_EX) $(TLS_EX) $(TLS_TESTS) $(B)/tsan_e2e_post \
            $(B)/rtwscat

$(B)/unit_% $(B)/conformance_% $(B)/e2e_%: | $(B)
$(B)/unit_%: tests/unit_%.c rtws.h tests/t.h tests/guard.h tests/router_peer.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lm
$(B)/conformance_%: tests/conformance_%.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lm
$(B)/e2e_%: tests/e2e_%.c rtws.h tests/t.h tests/proxy.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lm
$(B)/e2e_hostile: tests/hostile.h
$(B)/e2e_hostile_load: tests/hostile.h
$(B)/e2e_cluster: $(B)/asan_chat_server tests/redis_proc.h
$(B)/e2e_cluster_presence $(B)/e2e_redis: tests/redis_proc.h
$(B)/e2e_realtime: tests/rt_e2e.h tests/rt_seq.h
$(B)/e2e_rt_client: tests/rt_e2e.h
$(B)/e2e_ratelimit: tests/rt_seq.h
# cross-thread posting: producer threads (the library needs no -pthread);
# the TSan build of the same test runs from tests/interop_tsan.sh
$(B)/e2e_post: tests/e2e_post.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) -pthread $< -o $@ -lm
# rtws_ctx_stop from another thread
$(B)/e2e_run: tests/e2e_run.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) -pthread $< -o $@ -lm
$(B)/tsan_e2e_post: tests/e2e_post.c rtws.h tests/t.h | $(B)
	$(CC) -std=c99 -g -O1 $(CWARN) -fsanitize=thread -fno-omit-frame-pointer -I. -pthread $< -o $@
$(B)/tls_%: tests/tls_%.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) $(TLS_FLAGS) $< -o $@ $(TLS_LIBS)

# fuzz targets replayed over their corpora by a plain main(), under ASan+UBSan
$(B)/replay_%: fuzz/%.c fuzz/replay.c fuzz/fuzz.h rtws.h | $(B)
	$(CC) $(TEST_CFLAGS) -DRTWS_FUZZ_NAME='"$*"' fuzz/replay.c $< -o $@
	@printf '#!/bin/sh\nexec %s fuzz/corpus/%s\n' "$@" "$*" > $(B)/run_$*; chmod +x $(B)/run_$*

# the header builds cleanly as C99, C11, C++11 (gcc, clang, g++, clang++),
# in two translation units, with RTWS_STATIC and with the allocator macros;
# and tests/compile_order.c (a libc header before the implementation under
# -std=c99) stops at rtws.h's #error that says why
# tests/compile_switches.sh: every combination of the RTWS_NO_* switches
# tests/compile_windows.sh: mingw-w64 C99/C++11 builds (skipped without it)
compile-check: | $(B)
	@set -e; r=$(B)/compile_results; p=0; f=0; : > $(B)/compile.log; \
	try() { if "$$@" >>$(B)/compile.log 2>&1; then p=$$((p+1)); else f=$$((f+1)); echo "compile FAILED: $$*"; fi; }; \
	try gcc -std=c99 $(CWARN) -I. tests/compile.c tests/compile2.c -o $(B)/compile_gcc; \
	try clang -std=c99 $(CWARN) -I. tests/compile.c tests/compile2.c -o $(B)/compile_clang; \
	try gcc -std=c11 $(CWARN) -I. tests/compile.c tests/compile2.c -o $(B)/compile_gcc11; \
	try gcc -std=c99 $(CWARN) -DRTWS_STATIC -DCOMPILE_ONE -I. tests/compile.c -o $(B)/compile_static; \
	try gcc -std=c99 $(CWARN) -DCOMPILE_ALLOC_MACROS -DCOMPILE_ONE -I. tests/compile.c -o $(B)/compile_alloc; \
	try gcc -std=c99 -Os $(CWARN) -I. tests/compile.c tests/compile2.c -o $(B)/compile_os; \
	try g++ -std=c++11 $(WARN) -I. tests/compile.cpp tests/compile2.c -x none -o $(B)/compile_gxx; \
	try clang++ -std=c++11 $(WARN) -Wno-deprecated -I. -x c++ tests/compile.cpp -x c++ tests/compile2.c -o $(B)/compile_clangxx; \
	if [ "$(BEARSSL)" = yes ]; then \
	  try gcc -std=c99 $(CWARN) $(TLS_FLAGS) -I. tests/compile.c tests/compile2.c -o $(B)/compile_tls_gcc $(TLS_LIBS); \
	  try clang -std=c99 $(CWARN) $(TLS_FLAGS) -I. tests/compile.c tests/compile2.c -o $(B)/compile_tls_clang $(TLS_LIBS); \
	  try gcc -std=c99 $(CWARN) $(TLS_FLAGS) -DRTWS_STATIC -DCOMPILE_ONE -I. tests/compile.c -o $(B)/compile_tls_static $(TLS_LIBS); \
	  try g++ -std=c++11 $(WARN) $(TLS_FLAGS) -I. tests/compile.cpp tests/compile2.c -x none -o $(B)/compile_tls_gxx $(TLS_LIBS); \
	  try clang++ -std=c++11 $(WARN) -Wno-deprecated $(TLS_FLAGS) -I. -x c++ tests/compile.cpp -x c++ tests/compile2.c -x none -o $(B)/compile_tls_clangxx $(TLS_LIBS); \
	fi; \
	for c in gcc clang; do \
	  if $$c -std=c99 -I. -c tests/compile_order.c -o $(B)/compile_order.o > $(B)/compile_order.log 2>&1; then \
	    f=$$((f+1)); echo "compile FAILED: $$c compiled tests/compile_order.c (<stdio.h> first, -std=c99) without rtws.h's include-order #error"; \
	  elif grep -q 'rtws.h: a libc header' $(B)/compile_order.log; then p=$$((p+1)); \
	  else f=$$((f+1)); echo "compile FAILED: tests/compile_order.c ($$c) failed without rtws.h's include-order message"; head -n 5 $(B)/compile_order.log; fi; \
	done; \
	for b in gcc clang gcc11 static alloc os gxx clangxx tls_gcc tls_clang tls_static tls_gxx tls_clangxx; do \
	  if [ -x $(B)/compile_$$b ]; then try $(B)/compile_$$b; fi; done; \
	echo "0 1" > $(B)/compile_switches.counts; \
	WARN="$(WARN)" CWARN="$(CWARN)" BEARSSL=$(BEARSSL) tests/compile_switches.sh $(B) > $(B)/compile_switches.log 2>&1 || true; \
	cat $(B)/compile_switches.log >> $(B)/compile.log; grep 'compile FAILED' $(B)/compile_switches.log || true; \
	read sp sf < $(B)/compile_switches.counts; p=$$((p+sp)); f=$$((f+sf)); \
	echo "0 1" > $(B)/compile_windows.counts; \
	WARN="$(WARN)" CWARN="$(CWARN)" tests/compile_windows.sh $(B) > $(B)/compile_windows.log 2>&1 || true; \
	cat $(B)/compile_windows.log >> $(B)/compile.log; grep 'compile FAILED' $(B)/compile_windows.log || true; \
	read wp wf < $(B)/compile_windows.counts; p=$$((p+wp)); f=$$((f+wf)); \
	printf '#!/bin/sh\ncat %s/compile.log\necho "%s passed, %s failed"\n' $(B) $$p $$f > $$r; chmod +x $$r

# --- fuzz: libFuzzer, FUZZ_SECONDS per target, new inputs merged into the corpus
fuzz: $(FUZZBIN)
	@set -e; found=0; for n in $(filter-out $(FUZZ_OPEN),$(FUZZ_NAME)); do \
	  mkdir -p $(B)/scratch_$$n fuzz/corpus/$$n; \
	  d=; [ -f fuzz/$$n.dict ] && d=-dict=fuzz/$$n.dict; \
	  echo "== fuzzing $$n for $(FUZZ_SECONDS)s"; \
	  if ! $(B)/libfuzzer_$$n $$d -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	     -artifact_prefix=$(B)/crash_$$n- $(B)/scratch_$$n fuzz/corpus/$$n > $(B)/fuzz_$$n.log 2>&1; then \
	    found=1; echo "FINDING in $$n:"; tail -n 40 $(B)/fuzz_$$n.log; \
	  else grep -E '^stat::number_of_executed_units|^Done' $(B)/fuzz_$$n.log | tr '\n' ' '; echo; fi; \
	  $(B)/libfuzzer_$$n -merge=1 fuzz/corpus/$$n $(B)/scratch_$$n > /dev/null 2>&1 || true; \
	done; \
	if [ $$found = 0 ]; then echo "fuzz: 0 findings"; else echo "fuzz: findings above (inputs in $(B)/crash_*)"; exit 1; fi
$(B)/replay_fuzz_conn_server $(B)/replay_fuzz_conn_client: fuzz/fuzz_conn.h
$(B)/libfuzzer_fuzz_conn_server $(B)/libfuzzer_fuzz_conn_client: fuzz/fuzz_conn.h
$(B)/replay_fuzz_handshake_req $(B)/replay_fuzz_handshake_resp $(B)/libfuzzer_fuzz_handshake_req $(B)/libfuzzer_fuzz_handshake_resp: fuzz/fuzz_http_head.h
$(B)/libfuzzer_%: fuzz/%.c fuzz/fuzz.h rtws.h | $(B)
	$(CLANG) -std=c99 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $< -o $@

# bench: every scenario with its peers in the same run -> bench/results.md + charts
bench:
	@bash bench/run.sh
$(B)/bench_router: bench/bench_router.c rtws.h | $(B)
	$(CC) -std=c99 -O2 -I. $< -o $@

# soak: 1,000 connections echoing and reconnecting (SOAK_SECONDS, default 300)
soak:
	@bash bench/soak.sh

# the demo: examples/chat_server (rooms, presence, typing, history) and its page
run: $(B)/chat_server
	@echo "rtws chat demo - Ctrl-C stops it"
	@exec $(B)/chat_server --host 127.0.0.1 --port 8080

# three chat_server nodes on 8080-8082 sharing a local redis-server (the Redis engine)
run-cluster: $(B)/chat_server
	@exec bash tools/run_cluster.sh

# install: the header, pkg-config files (rtws, rtws-bearssl), the CMake package
# (find_package(rtws CONFIG): rtws::rtws) and rtwscat. Header-only, so the .pc
# and CMake files live under share/. DESTDIR stages; PREFIX is what they name.
PKGDIR   := $(PREFIX)/share/pkgconfig
CMAKEDIR := $(PREFIX)/share/cmake/rtws
SUBST    := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@INCLUDEDIR@|$${prefix}/include|g' \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@CMAKE_TO_PREFIX@|../../..|g' -e 's|@INCLUDE_REL@|include|g'
INSTALLED := include/rtws.h share/pkgconfig/rtws.pc share/pkgconfig/rtws-bearssl.pc \
	    share/cmake/rtws/rtwsConfig.cmake share/cmake/rtws/rtwsConfigVersion.cmake bin/rtwscat
install: $(B)/rtwscat
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PKGDIR) $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(PREFIX)/bin
	install -m 644 rtws.h $(DESTDIR)$(PREFIX)/include/rtws.h
	$(SUBST) packaging/rtws.pc.in > $(DESTDIR)$(PKGDIR)/rtws.pc
	$(SUBST) packaging/rtws-bearssl.pc.in > $(DESTDIR)$(PKGDIR)/rtws-bearssl.pc
	$(SUBST) packaging/rtwsConfig.cmake.in > $(DESTDIR)$(CMAKEDIR)/rtwsConfig.cmake
	$(SUBST) packaging/rtwsConfigVersion.cmake.in > $(DESTDIR)$(CMAKEDIR)/rtwsConfigVersion.cmake
	chmod 644 $(DESTDIR)$(PKGDIR)/rtws*.pc $(DESTDIR)$(CMAKEDIR)/rtws*.cmake
	install -m 755 $(B)/rtwscat $(DESTDIR)$(PREFIX)/bin/rtwscat

uninstall:
	rm -f $(patsubst %,$(DESTDIR)$(PREFIX)/%,$(INSTALLED))
	-rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null

fmt:
	clang-format -i rtws.h tests/*.c tests/*.h fuzz/*.c examples/*.c examples/seeds/*/*.c tools/*.c

clean:
	rm -rf $(B)
