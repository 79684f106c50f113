# syntax=docker/dockerfile:1
#
# The sidecar-kit release image: `sidecar-kit` (the webhook server and the CLI), the same
# program as the kubectl plugin `kubectl-sidecar`, and `sidecar-shim`, which universal and
# Job-safe wiring copy into pods (the webhook's SIDECAR_KIT_SHIM_IMAGE is this image).
#
#   docker build -t ghcr.io/sidecar-kit/sidecar-kit:v0.1.0 \
#     --build-arg VERSION=v0.1.0 --build-arg GIT_COMMIT="$(git rev-parse --short=12 HEAD)" .
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts. Without Docker,
# `cargo xtask image` builds the same image as an OCI archive (README, "Release image").

ARG RUST_IMAGE=rust:1-bookworm

# --- build ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src

# .dockerignore keeps .git out of the context, so `sidecar-kit version` learns its commit
# from this argument (empty: "unknown").
ARG GIT_COMMIT=""
# The shim's `api` feature (rustls, ring) serves `jobCompletion: api` profiles and https
# readiness checks; build with --build-arg SHIM_FEATURES= for the std-only shim.
ARG SHIM_FEATURES=api
ENV CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never \
    SIDECAR_KIT_GIT_COMMIT=${GIT_COMMIT}

COPY . .

# Both binaries are statically linked (crt-static on glibc), so the image needs no C
# library: the same file system as `cargo xtask image` builds without Docker (README,
# "Release image"). An explicit --target keeps RUSTFLAGS off build scripts and proc macros,
# which cannot be static; the target is the builder's own (on amd64:
# x86_64-unknown-linux-gnu). readelf fails the build if a binary still needs a library.
# Neither does DNS lookups through NSS, the one thing static glibc cannot do: in a pod the
# API server is addressed by KUBERNETES_SERVICE_HOST, an IP.
#
# target/ is a cache mount and is not part of the image: the binaries are copied out in
# the same step, into the image's file system under /rootfs.
RUN --mount=type=cache,id=sidecar-kit-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=sidecar-kit-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=sidecar-kit-target,target=/src/target,sharing=locked \
    set -eux; \
    target="$(rustc -vV | sed -n 's/^host: //p')"; \
    export RUSTFLAGS="-C target-feature=+crt-static"; \
    cargo build --locked --release -p sidecar-kit --bin sidecar-kit --target "${target}"; \
    cargo build --locked --profile shim -p sidecar-shim --features "${SHIM_FEATURES}" \
      --target "${target}"; \
    mkdir -p /rootfs/etc /rootfs/home/nonroot /rootfs/tmp /rootfs/usr/local/bin; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group; \
    chmod 1777 /rootfs/tmp; chmod 0700 /rootfs/home/nonroot; \
    cp "target/${target}/release/sidecar-kit" /rootfs/usr/local/bin/sidecar-kit; \
    ln /rootfs/usr/local/bin/sidecar-kit /rootfs/usr/local/bin/kubectl-sidecar; \
    cp "target/${target}/shim/sidecar-shim" /rootfs/usr/local/bin/sidecar-shim; \
    for b in sidecar-kit sidecar-shim; do \
      if readelf -d "/rootfs/usr/local/bin/$b" | grep -q NEEDED || readelf -l "/rootfs/usr/local/bin/$b" | grep -q INTERP; then \
        echo "$b must be statically linked" >&2; exit 1; \
      fi; \
    done; \
    /rootfs/usr/local/bin/sidecar-kit version; \
    /rootfs/usr/local/bin/sidecar-shim --help >/dev/null

# --- release image ----------------------------------------------------------------------
# Nothing but the binaries, /etc/passwd and /etc/group (user nonroot, 65532), /tmp and the
# user's home: no shell, no package manager, no C library.
FROM scratch

ARG VERSION=v0.1.0
ARG GIT_COMMIT=""
ARG SOURCE_URL=https://example.invalid/sidecar-kit
LABEL org.opencontainers.image.title="sidecar-kit" \
      org.opencontainers.image.description="Adopt Kubernetes native sidecar containers safely: injector (CLI and mutating admission webhook) and sidecar-shim." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"

# Owned by root, executable by all: the running user cannot change them. Universal wiring's
# install container finds `sidecar-shim` by name on PATH.
COPY --from=builder /rootfs/ /
COPY --from=builder --chown=65532:65532 /rootfs/home/nonroot /home/nonroot
ENV PATH=/usr/local/bin
WORKDIR /
USER 65532:65532
# 8443: HTTPS /mutate; 8080: /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/sidecar-kit"]
