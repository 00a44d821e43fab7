# pmbus: the two commands of the README.
#   make run    install what is missing, build, run the demo in the foreground
#   make test   install what is missing, build, run every test (also under
#               AddressSanitizer and UndefinedBehaviorSanitizer)
#   make install [PREFIX=/usr/local] [DESTDIR=]
#               pmd, pmctl, pmbroker, libpmproto (shared and static), its
#               headers and pmbus.pc
# Other targets: build, bench, clean.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
PREFIX     ?= /usr/local

.PHONY: all deps build build-asan install run test test-plain test-asan bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPM_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

install: build
	@cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

run: build
	@echo "pmd: running conf/demo.cfg in the foreground; Ctrl-C stops it cleanly."
	@echo "     in another terminal: $(BUILD)/ctl/pmctl -c conf/demo.cfg status"
	$(BUILD)/agent/pmd -c conf/demo.cfg --follow-logs

test-plain: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS) --timeout 600 -LE fuzz

test: test-plain test-asan

bench: build
	/usr/bin/python3 bench/pmctl_startup.py $(BUILD)
	/usr/bin/python3 bench/logs_throughput.py --build $(BUILD)
	/usr/bin/python3 bench/idle_wakeups.py $(BUILD)
	/usr/bin/python3 bench/scale.py $(BUILD)
	/usr/bin/python3 bench/event_latency.py $(BUILD)
	/usr/bin/python3 bench/followers.py $(BUILD) --lines 10000 --followers 10
	/usr/bin/python3 bench/broker.py $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
