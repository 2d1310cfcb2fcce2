# Builds the libFuzzer targets with clang: `make fuzz-smoke` (top-level
# Makefile.am) runs this through fuzz/smoke.sh; by hand:
#   make -f fuzz/fuzz.mk top_srcdir=. top_builddir=. DEP_CFLAGS=... DEP_LIBS=...
# The library's sources are compiled here again, instrumented (the library
# itself exports only public symbols); objects go under $(O).

FUZZ_CC      ?= clang
top_srcdir   ?= .
top_builddir ?= .
O            ?= $(top_builddir)/fuzz/build
SAN          ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  ?= -g -O1 -fno-omit-frame-pointer $(SAN)
CPPFLAGS_ALL  = -I$(top_srcdir)/include -I$(top_builddir)/include -I$(top_srcdir)/lib $(DEP_CFLAGS)

LIB_SRCS  = $(sort $(wildcard $(top_srcdir)/lib/*/*.c))
LIB_OBJS  = $(patsubst $(top_srcdir)/lib/%.c,$(O)/lib/%.o,$(LIB_SRCS))
SPILL_OBJS = $(addprefix $(O)/lib/,store/spill.o store/reap.o store/arena.o base/hmap.o base/log.o base/config.o base/status.o)
TARGETS   = $(O)/fuzz_wire $(O)/fuzz_args $(O)/fuzz_spill

all: $(TARGETS)

$(O)/lib/%.o: $(top_srcdir)/lib/%.c
	@mkdir -p $(@D)
	@echo "  CC(fuzz) $<"
	@$(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(O)/%.o: $(top_srcdir)/fuzz/%.c
	@mkdir -p $(@D)
	@echo "  CC(fuzz) $<"
	@$(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(O)/fuzz_wire $(O)/fuzz_args: $(O)/%: $(O)/%.o $(LIB_OBJS)
	@echo "  LD(fuzz) $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(DEP_LIBS) -lpthread -lrt -lm

$(O)/fuzz_spill: $(O)/fuzz_spill.o $(SPILL_OBJS)
	@echo "  LD(fuzz) $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(DEP_LIBS) -lpthread

# The seed corpus writer (fuzz/gen_corpus.c), not instrumented for libFuzzer.
$(O)/gen_corpus: $(O)/gen_corpus.o $(LIB_OBJS)
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $^ -o $@ $(DEP_LIBS) -lpthread -lrt -lm

-include $(LIB_OBJS:.o=.d) $(O)/fuzz_wire.d $(O)/fuzz_args.d $(O)/fuzz_spill.d $(O)/gen_corpus.d

.PHONY: all
