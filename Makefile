# Strait: the two README commands and their parts. Run as root on Debian 12.
.PHONY: deps build demo test clean

deps:
	deploy/install-deps.sh

build: deps
	cargo build --release

## Installs what is needed, builds, and shows Strait answering ping on a tap port.
demo: build
	deploy/demo.sh

## Installs what is needed and runs every test.
test: deps
	deploy/test.sh

clean:
	cargo clean
