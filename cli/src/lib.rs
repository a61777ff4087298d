//! v2v-cli
