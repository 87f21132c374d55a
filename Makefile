# rtws - make [all] | test | fuzz | bench | run | install | clean | fmt
CC      ?= cc
CXX     ?= c++
CLANG   ?= clang
PREFIX  ?= /usr/local
B       := build

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
SCRIPTS   := $(wildcard tests/interop_*.sh tests/interop_*.py)
FUZZ_SECONDS ?= 60

.PHONY: all test unit compile-check fuzz bench run install clean fmt examples
all: examples

examples: $(EXAMPLES)
$(B)/%: examples/%.c rtws.h | $(B)
	$(CC) $(EX_CFLAGS) $< -o $@

$(B):
	mkdir -p $(B)

# --- test: everything, ending in one "N passed, M failed" line -------------
test: compile-check $(UNIT_BIN) $(REPLAY) $(EXAMPLES)
	@tests/run.sh $(B)/compile_results $(UNIT_BIN) $(patsubst %,$(B)/run_%,$(FUZZ_NAME)) $(SCRIPTS)

$(B)/unit_% $(B)/conformance_% $(B)/e2e_%: | $(B)
$(B)/unit_%: tests/unit_%.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lm
$(B)/conformance_%: tests/conformance_%.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lm
$(B)/e2e_%: tests/e2e_%.c rtws.h tests/t.h | $(B)
	$(CC) $(TEST_CFLAGS) $< -o $@ -lm

# fuzz targets replayed over their corpora by a plain main(), under ASan+UBSan
$(B)/replay_%: fuzz/%.c fuzz/replay.c rtws.h | $(B)
	$(CC) $(TEST_CFLAGS) -DRTWS_FUZZ_NAME='"$*"' fuzz/replay.c $< -o $@
	@printf '#!/bin/sh\nexec %s fuzz/corpus/%s\n' "$@" "$*" > $(B)/run_$*; chmod +x $(B)/run_$*

# the header builds cleanly as C99, C11, C++11 (gcc, clang, g++, clang++),
# in two translation units, with RTWS_STATIC and with the allocator macros
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
	for b in gcc clang gcc11 static alloc os gxx clangxx; do \
	  if [ -x $(B)/compile_$$b ]; then try $(B)/compile_$$b; fi; done; \
	printf '#!/bin/sh\ncat %s/compile.log\necho "%s passed, %s failed"\n' $(B) $$p $$f > $$r; chmod +x $$r

# --- fuzz: libFuzzer, FUZZ_SECONDS per target, new inputs merged into the corpus
fuzz: $(FUZZBIN)
	@set -e; for n in $(FUZZ_NAME); do \
	  mkdir -p $(B)/scratch_$$n fuzz/corpus/$$n; \
	  d=; [ -f fuzz/$$n.dict ] && d=-dict=fuzz/$$n.dict; \
	  echo "== fuzzing $$n for $(FUZZ_SECONDS)s"; \
	  $(B)/libfuzzer_$$n $$d -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	     -artifact_prefix=$(B)/crash_$$n- $(B)/scratch_$$n fuzz/corpus/$$n 2>&1 | tail -n 12; \
	  $(B)/libfuzzer_$$n -merge=1 fuzz/corpus/$$n $(B)/scratch_$$n 2>&1 | tail -n 1; \
	done
$(B)/replay_fuzz_conn_server $(B)/replay_fuzz_conn_client: fuzz/fuzz_conn.h
$(B)/libfuzzer_fuzz_conn_server $(B)/libfuzzer_fuzz_conn_client: fuzz/fuzz_conn.h
$(B)/libfuzzer_%: fuzz/%.c rtws.h | $(B)
	$(CLANG) -std=c99 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $< -o $@

bench:
	@echo "bench: not built yet (see the open issue for make bench)"; exit 1

run:
	@echo "run: the demo server arrives with the realtime layer (see README)"; exit 1

install:
	install -d $(DESTDIR)$(PREFIX)/include
	install -m 644 rtws.h $(DESTDIR)$(PREFIX)/include/rtws.h

fmt:
	clang-format -i rtws.h tests/*.c tests/*.h fuzz/*.c examples/*.c

clean:
	rm -rf $(B)
