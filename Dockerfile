# syntax=docker/dockerfile:1
#
# The sidecar-kit release image: `sidecar-kit` (the webhook server and the CLI), the same
# program as the kubectl plugin `kubectl-sidecar`, and `sidecar-shim`, which universal and
# Job-safe wiring copy into pods (the webhook's SIDECAR_KIT_SHIM_IMAGE is this image).
#
#   docker build -t ghcr.io/sidecar-kit/sidecar-kit:v0.1.0 \
#     --build-arg VERSION=v0.1.0 --build-arg GIT_COMMIT="$(git rev-parse --short=12 HEAD)" .
#
# Needs BuildKit (the default builder of current Docker) for the cache mounts.

ARG RUST_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot

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

# sidecar-kit: release profile, dynamically linked against the glibc of bookworm, which is
# the glibc of the distroless debian12 base.
#
# sidecar-shim: statically linked (crt-static on glibc; it does no DNS lookups, the one
# thing static glibc cannot do), because it runs inside the sidecar's image, whatever libc
# that has, or none. An explicit --target keeps RUSTFLAGS off build scripts and proc
# macros, which cannot be static; the target is the builder's own (on amd64:
# x86_64-unknown-linux-gnu). readelf fails the build if the shim still needs a library.
#
# target/ is a cache mount and is not part of the image: the binaries are copied out in
# the same step.
RUN --mount=type=cache,id=sidecar-kit-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=sidecar-kit-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,id=sidecar-kit-target,target=/src/target,sharing=locked \
    set -eux; \
    cargo build --locked --release -p sidecar-kit --bin sidecar-kit; \
    target="$(rustc -vV | sed -n 's/^host: //p')"; \
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --locked --profile shim -p sidecar-shim --features "${SHIM_FEATURES}" \
        --target "${target}"; \
    mkdir -p /out; \
    cp target/release/sidecar-kit /out/sidecar-kit; \
    cp "target/${target}/shim/sidecar-shim" /out/sidecar-shim; \
    if readelf -d /out/sidecar-shim | grep -q NEEDED; then \
      echo "sidecar-shim must be statically linked" >&2; exit 1; \
    fi; \
    /out/sidecar-kit version; \
    /out/sidecar-shim --help >/dev/null

# --- release image ----------------------------------------------------------------------
# distroless cc: glibc and libgcc, no shell, no package manager; user 65532 (nonroot).
FROM ${BASE_IMAGE}

ARG BASE_IMAGE
ARG VERSION=v0.1.0
ARG GIT_COMMIT=""
ARG SOURCE_URL=https://example.invalid/sidecar-kit
LABEL org.opencontainers.image.title="sidecar-kit" \
      org.opencontainers.image.description="Adopt Kubernetes native sidecar containers safely: injector (CLI and mutating admission webhook) and sidecar-shim." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

# Owned by root, executable by all: the running user cannot change them. The PATH of the
# base image contains /usr/local/bin, where universal wiring's install container finds
# `sidecar-shim` by name.
COPY --from=builder /out/sidecar-kit /usr/local/bin/sidecar-kit
COPY --from=builder /out/sidecar-kit /usr/local/bin/kubectl-sidecar
COPY --from=builder /out/sidecar-shim /usr/local/bin/sidecar-shim

USER 65532:65532
# 8443: HTTPS /mutate; 8080: /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/sidecar-kit"]
