# Installation artefacts (issue 7): the pip wheel and the man pages.
# Included from the Makefile; `make wheel`, `make man`, `make install-man`.
CARGO ?= cargo
PREFIX ?= /usr/local
MAN_DIR := target/man

.PHONY: wheel man install-man

## wheel: the pip wheel, target/wheels/pysampler-VERSION-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl (maturin + zig, cached in ~/.cache/pysampler)
wheel:
	@bash scripts/build-wheel.sh

## man: man pages generated from the clap definitions (target/man/pysampler.1, pysampler-record.1, ...)
man:
	$(CARGO) run --release --quiet --example gen_man -- $(MAN_DIR)
	@ls $(MAN_DIR)/*.1

## install-man: copy the man pages to $(PREFIX)/share/man/man1 (after `cargo install --path .`)
install-man: man
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(MAN_DIR)/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
