# syntax=docker/dockerfile:1
# One image with both binaries and the site:
#   /usr/local/bin/corral          the portal (the entrypoint; `corral migrate`
#                                  applies the migrations and exits)
#   /usr/local/bin/corral-gateway  the gateway
#   /app/site                      the Leptos site (wasm, JS, CSS, assets)
# Runs as the unprivileged user 65532 on Debian slim. Build:
#   docker build -t ghcr.io/corral/corral:0.1.0 .
# scripts/check-k8s checks that every path copied below exists in the
# build context (CI has no container runtime to build it).

# Node for the build tools cargo-leptos runs from ./node_modules/.bin (the
# Tailwind v4 CLI and binaryen's wasm-opt), as scripts/setup installs them.
FROM node:22-bookworm-slim AS node

FROM rust:1.95-slim-bookworm AS build
# gcc and make for jemalloc (the gateway's allocator).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
RUN rustup target add wasm32-unknown-unknown
# The same pinned tools as scripts/env.sh and scripts/setup.
ARG CARGO_LEPTOS_VERSION=0.3.10
RUN cargo install --locked "cargo-leptos@${CARGO_LEPTOS_VERSION}" \
      --config 'profile.release.lto=false' --config 'profile.release.codegen-units=16' \
      --config 'profile.release.opt-level=1'
WORKDIR /src
# wasm-bindgen-cli must equal the wasm-bindgen crate in Cargo.lock exactly.
COPY Cargo.lock ./
RUN cargo install -f wasm-bindgen-cli --version \
      "$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)"
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY Cargo.toml ./
COPY .cargo .cargo
COPY .sqlx .sqlx
COPY app app
COPY server server
COPY migrations migrations
COPY public public
COPY style style
# Builds use the committed .sqlx/ query metadata: no database.
ENV SQLX_OFFLINE=true
RUN cargo leptos build --release \
 && cargo build --release --locked -p gateway --bin corral-gateway \
 && mkdir -p /out \
 && cp target/release/corral target/release/corral-gateway /out/ \
 && cp -r target/site /out/site

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/corral /out/corral-gateway /usr/local/bin/
COPY --from=build /out/site /app/site
WORKDIR /app
ENV LEPTOS_OUTPUT_NAME=corral \
    LEPTOS_SITE_ROOT=/app/site \
    LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_ENV=PROD
# The Kubernetes manifests run it as this user too (k8s/base).
USER 65532:65532
EXPOSE 3000 11435
ENTRYPOINT ["/usr/local/bin/corral"]
