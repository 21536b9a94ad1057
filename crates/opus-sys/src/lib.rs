//! Raw FFI declarations for the Opus custom-mode API (`opus_custom.h`) of the
//! vendored libopus 1.6.1, built by `build.rs` with `CUSTOM_MODES` defined.
//!
//! Only the CELT layer is compiled, so only the `opus_custom_*` functions plus
//! `opus_strerror` / `opus_get_version_string` exist. Everything here is
//! `unsafe` to call; use the safe wrapper in `tutti-codec`.
//!
//! Declarations are written by hand from `opus/include/opus_custom.h` and
//! `opus/include/opus_defines.h` (no bindgen, so no libclang at build time).

#![no_std]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_uchar};
use core::marker::{PhantomData, PhantomPinned};

/// Version of the vendored Opus source.
pub const OPUS_VERSION: &str = "1.6.1";

pub type opus_int16 = i16;
pub type opus_int32 = i32;

/// Opaque `OpusCustomMode` (a `CELTMode`). Immutable once created.
#[repr(C)]
pub struct OpusCustomMode {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque `OpusCustomEncoder` (a `CELTEncoder`).
#[repr(C)]
pub struct OpusCustomEncoder {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// Opaque `OpusCustomDecoder` (a `CELTDecoder`).
#[repr(C)]
pub struct OpusCustomDecoder {
    _data: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// Error codes (opus_defines.h).
pub const OPUS_OK: c_int = 0;
pub const OPUS_BAD_ARG: c_int = -1;
pub const OPUS_BUFFER_TOO_SMALL: c_int = -2;
pub const OPUS_INTERNAL_ERROR: c_int = -3;
pub const OPUS_INVALID_PACKET: c_int = -4;
pub const OPUS_UNIMPLEMENTED: c_int = -5;
pub const OPUS_INVALID_STATE: c_int = -6;
pub const OPUS_ALLOC_FAIL: c_int = -7;

// CTL requests (opus_defines.h). Values are passed as `opus_int32`.
pub const OPUS_SET_APPLICATION_REQUEST: c_int = 4000;
pub const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
pub const OPUS_SET_VBR_REQUEST: c_int = 4006;
pub const OPUS_SET_COMPLEXITY_REQUEST: c_int = 4010;
pub const OPUS_SET_PACKET_LOSS_PERC_REQUEST: c_int = 4014;
pub const OPUS_RESET_STATE: c_int = 4028;

pub const OPUS_APPLICATION_VOIP: opus_int32 = 2048;
pub const OPUS_APPLICATION_AUDIO: opus_int32 = 2049;
pub const OPUS_APPLICATION_RESTRICTED_LOWDELAY: opus_int32 = 2051;
pub const OPUS_BITRATE_MAX: opus_int32 = -1;

extern "C" {
    pub fn opus_get_version_string() -> *const c_char;
    pub fn opus_strerror(error: c_int) -> *const c_char;

    pub fn opus_custom_mode_create(fs: opus_int32, frame_size: c_int, error: *mut c_int) -> *mut OpusCustomMode;
    pub fn opus_custom_mode_destroy(mode: *mut OpusCustomMode);

    pub fn opus_custom_encoder_create(
        mode: *const OpusCustomMode,
        channels: c_int,
        error: *mut c_int,
    ) -> *mut OpusCustomEncoder;
    pub fn opus_custom_encoder_destroy(st: *mut OpusCustomEncoder);
    pub fn opus_custom_encode(
        st: *mut OpusCustomEncoder,
        pcm: *const opus_int16,
        frame_size: c_int,
        compressed: *mut c_uchar,
        max_data_bytes: c_int,
    ) -> c_int;
    pub fn opus_custom_encode_float(
        st: *mut OpusCustomEncoder,
        pcm: *const f32,
        frame_size: c_int,
        compressed: *mut c_uchar,
        max_data_bytes: c_int,
    ) -> c_int;
    /// Variadic: the argument after `request` is an `opus_int32` for all
    /// `OPUS_SET_*` requests declared here, none for `OPUS_RESET_STATE`.
    pub fn opus_custom_encoder_ctl(st: *mut OpusCustomEncoder, request: c_int, ...) -> c_int;

    pub fn opus_custom_decoder_create(
        mode: *const OpusCustomMode,
        channels: c_int,
        error: *mut c_int,
    ) -> *mut OpusCustomDecoder;
    pub fn opus_custom_decoder_destroy(st: *mut OpusCustomDecoder);
    pub fn opus_custom_decode(
        st: *mut OpusCustomDecoder,
        data: *const c_uchar,
        len: c_int,
        pcm: *mut opus_int16,
        frame_size: c_int,
    ) -> c_int;
    pub fn opus_custom_decode_float(
        st: *mut OpusCustomDecoder,
        data: *const c_uchar,
        len: c_int,
        pcm: *mut f32,
        frame_size: c_int,
    ) -> c_int;
    /// Variadic, see [`opus_custom_encoder_ctl`].
    pub fn opus_custom_decoder_ctl(st: *mut OpusCustomDecoder, request: c_int, ...) -> c_int;
}
