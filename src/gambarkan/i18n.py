"""Errors in the user's language: Indonesian texts keyed by error code, and ``render(err, lang)``.

English texts live beside the error classes (``gambarkan.errors.MESSAGES``); this table holds the
Indonesian ones with the same ``{placeholders}``. Every surface renders through ``render``: the web
UI and the notebook in Indonesian by default, the CLI by ``GAMBARKAN_LANG`` or the locale
(``cli_language``), the HTTP APIs keep the English ``message`` and add the ``code``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from gambarkan.errors import EXPLICIT_CODES, MESSAGES, GambarkanError, fill

LANGUAGES = ("id", "en")
DEFAULT_LANG = "id"

#: Indonesian (message, hint) per specific code; same placeholders as ``errors.MESSAGES``.
ID: dict[str, tuple[str, str | None]] = {
    "size_out_of_range": ("{field} {value} di luar batas ({lo}-{hi})", None),
    "size_not_multiple_of_8": ("{field} {value} bukan kelipatan 8", "coba {suggestion}"),
    "value_out_of_range": ("{field} {value} di luar batas", "pakai nilai dari {lo} sampai {hi}"),
    "unknown_option": ("pilihan '{field}' tidak dikenal", "lihat: gambarkan generate --help"),
    "openvino_unavailable": ("OpenVINO tidak bisa menjalankan {model} di sini", "perlu `pip install openvino` dan model SD 1.x/2.x dalam fp32 di CPU"),
    "invalid_value": ("{field} tidak valid: {detail}", None),
    "prompt_has_nul": ("prompt berisi karakter NUL", None),
    "prompt_too_long": ("prompt lebih panjang dari {limit} karakter", None),
    "unknown_sampler": ("sampler '{name}' tidak dikenal", "{did_you_mean}lihat: gambarkan samplers"),
    "unknown_schedule_type": ("schedule type '{name}' tidak dikenal", "{did_you_mean}lihat: gambarkan samplers"),
    "background_not_supported": (
        "background 'transparent' tidak didukung: gambarkan hanya membuat gambar yang tidak transparan",
        "kosongkan background atau pakai 'opaque'",
    ),
    "interrogate_unavailable": (
        "interrogate (membuat keterangan dari gambar) belum tersedia di gambarkan",
        "tulis prompt sendiri, atau pakai /sdapi/v1/png-info untuk membaca prompt sebuah PNG",
    ),
    "unknown_vae": ("VAE '{name}' tidak dikenal: server ini tidak punya VAE terpisah", 'pakai "Automatic" (lihat /sdapi/v1/sd-vae)'),
    "style_not_found": (
        "style '{name}' tidak ditemukan: server ini tidak punya style A1111 yang tersimpan",
        "kosongkan styles (lihat /sdapi/v1/prompt-styles)",
    ),
    "bf16_unsupported": (
        "GPU ini (compute capability {major}.{minor}) tidak punya perangkat keras bf16",
        "pakai --dtype fp16 atau auto (bf16 butuh 8.0 ke atas, misalnya A100 atau L4)",
    ),
    "gguf_needs_base": (
        "{file} hanya berisi transformer {family}; encoder teks dan VAE-nya diambil dari model dasar",
        "pasang dulu paket {family} (misalnya gambarkan models pull flux-schnell), atau pakai paket itu",
    ),
    "unknown_package": ("paket '{name}' tidak dikenal", "{did_you_mean}lihat: gambarkan models list"),
    "model_not_found": (
        "file atau folder model tidak ditemukan: {path}",
        "periksa jalurnya, atau tulis id repo Hugging Face seperti stable-diffusion-v1-5/stable-diffusion-v1-5",
    ),
    "package_not_downloaded": (
        "paket '{name}' belum diunduh dan mode luring (offline) menyala",
        "jalankan `gambarkan models pull {name}` saat tersambung ke internet (periksa dengan `gambarkan doctor`), atau pakai --model FOLDER",
    ),
    "hub_unreachable": (
        "Hugging Face Hub ({host}) tidak bisa dihubungi",
        "periksa koneksi internet (atau proxy), lalu coba lagi; `gambarkan doctor` memeriksanya",
    ),
    "pickle_refused": (
        "{file} tidak aman dimuat (format pickle), jadi tidak dimuat",
        "pakai versi .safetensors, atau --allow-pickle untuk memindai lalu memuatnya",
    ),
    "image_not_found": ("{what}: berkas tidak ditemukan: {path}", "periksa lokasinya"),
    "image_not_regular_file": ("{what}: {path} bukan berkas biasa", "berikan berkas gambar (PNG, JPEG, WebP)"),
    "image_too_large_bytes": ("{what}: gambarnya {size_mb} MiB, melebihi batas {limit_mb} MiB", "simpan dalam ukuran lebih kecil (JPEG atau WebP)"),
    "image_not_base64": ("{what}: bukan berkas gambar dan bukan base64 yang valid", "berikan lokasi berkas, data URL, atau base64 dari PNG/JPEG/WebP"),
    "image_empty": ("{what}: gambarnya kosong", "berikan lokasi berkas, data URL, atau base64 sebuah gambar"),
    "image_unreadable": ("{what}: bukan gambar (atau formatnya tidak bisa dibaca gambarkan)", "berikan berkas PNG, JPEG, WebP, GIF, BMP, atau TIFF"),
    "image_decompression_bomb": ("{what}: gambar ini mengaku berukuran jauh melebihi batas piksel (bom dekompresi); batasnya {limit_mp} MP", "berikan gambar yang lebih kecil"),
    "image_too_many_pixels": ("{what}: gambarnya {width}x{height} ({mp} MP), melebihi batas {limit_mp} MP", "perkecil menjadi paling besar {fit_width}x{fit_height}"),
    "image_damaged": ("{what}: gambarnya rusak atau terpotong ({reason})", "simpan atau unduh ulang gambarnya"),
    "input_image_gone": ("{what}: gambar masukan {path} sudah tidak ada", "berikan gambarnya lagi (--image PATH)"),
    "input_image_changed": ("{what}: gambar masukan {path} sudah berubah sejak proses itu (hash {old}, sekarang {new})", "pakai --image untuk memakainya apa adanya sekarang"),
    "input_image_not_kept": ("{what}: gambar masukan proses ini diunggah, bukan berkas, jadi tidak disimpan", "berikan gambarnya lagi (--image PATH)"),
    "needs_init_image": ("{field} butuh gambar masukan", "berikan gambar yang mau diolah (--image PATH)"),
    "mask_size_mismatch": ("topengnya {mask_width}x{mask_height}, padahal gambarnya {width}x{height}", "berikan topeng berukuran sama, atau biarkan gambarkan mengubah ukurannya (--mask-resize / mask_resize=true)"),
    "mask_empty": ("topengnya kosong: tidak ada yang akan dilukis ulang", "putih = dilukis ulang; kalau topeng Anda terbalik, pakai --mask-invert"),
    "mask_full": ("topengnya menutupi seluruh gambar, itu sama dengan img2img", "hilangkan topengnya, atau cat hanya bagian yang mau diubah"),
    "mask_no_alpha": ("gambar masukan tidak punya area transparan untuk dijadikan topeng", "berikan PNG yang transparan, atau sebuah topeng (--mask PATH)"),
    "outpaint_not_multiple_of_8": ("kanvas hasil perluasan akan berukuran {width}x{height}, bukan kelipatan 8", "tambahkan piksel supaya kanvasnya kelipatan 8, misalnya {suggestion}"),
    "unknown_upscaler": ("upscaler '{name}' tidak dikenal", "{did_you_mean}lihat: gambarkan upscale --list"),
    "strength_runs_no_step": ("{field} {strength} dengan {steps} langkah tidak menjalankan satu langkah pun", "naikkan langkahnya menjadi {need} atau naikkan strength-nya"),
    "disk_full_download": (
        "ruang disk tidak cukup untuk '{name}': perlu {needed_mb} MB, yang kosong {free_mb} MB di {path}",
        "kosongkan sebagian disk, atau arahkan HF_HUB_CACHE ke disk yang lebih besar",
    ),
    "disk_full": ("disk yang memuat {path} penuh", "kosongkan sebagian disk atau pilih folder --out lain"),
    "ip_adapter_missing": ("IP-Adapter '{name}' tidak ada", "periksa path-nya"),
    "ip_adapter_unknown": ("IP-Adapter '{name}' tidak dikenal", "{did_you_mean}simpan folder IP-Adapter di {folder} atau berikan path-nya"),
    "ip_adapter_none": ("belum ada model IP-Adapter yang terpasang", "simpan folder IP-Adapter di {folder} atau berikan --ip-adapter-model PATH"),
    "ip_adapter_unnamed": ("model IP-Adapter belum disebutkan", "sebutkan salah satu dengan --ip-adapter-model NAMA|PATH ({names})"),
    "translator_download_failed": (
        "penerjemah marian ({model}) tidak bisa diunduh: {detail}",
        "periksa koneksi internet, atau pakai --translator glossary",
    ),
    "folder_not_writable": ("tidak bisa menulis ke {path} (izin ditolak)", "pilih folder yang bisa Anda tulisi dengan --out"),
    "folder_read_only": ("tidak bisa menulis ke {path} (sistem berkas hanya-baca)", "pilih folder yang bisa Anda tulisi dengan --out"),
    "device_out_of_memory": (
        "memori {device} habis dalam mode memori {mode}",
        "coba ukuran lebih kecil, batch lebih kecil, atau paket 'cepat' atau 'umum'",
    ),
    "gpu_out_of_memory": (
        "memori GPU habis, bahkan dalam mode memori {mode}",
        "coba ukuran atau batch lebih kecil, --memory minimal, atau paket yang lebih ringan seperti 'umum'",
    ),
    "batch_file_not_found": ("berkas tidak ditemukan: {path}", "periksa path berkas prompt"),
    "batch_input_empty": ("{name} kosong", "tulis satu prompt per baris, atau baris JSONL/CSV dengan kolom prompt"),
    "batch_unknown_field": ("{where}: kolom '{name}' tidak dikenal", "{did_you_mean}kolom yang ada: {fields}, ..."),
    "wildcard_missing": (
        "wildcard __{name}__ tidak punya berkas {name}.txt di {where}",
        "buat {name}.txt di sana, satu pilihan per baris, atau atur GAMBARKAN_WILDCARDS ke folder wildcard Anda",
    ),
    "ray_not_installed": ("--ray butuh Ray, yang belum terpasang", "{install}"),
    "ray_unreachable": (
        "klaster Ray di {address} tidak bisa dihubungi: {reason}",
        "nyalakan dengan `ray start --head`, atau periksa alamat dan firewall-nya",
    ),
}

#: One sentence per error *kind* (the class's code), for errors without a specific text.
KINDS: dict[str, dict[str, str]] = {
    "invalid_request": {"id": "Ada pengaturan yang tidak bisa dipakai.", "en": "One of the settings cannot be used."},
    "unknown_model": {"id": "Model atau paket itu tidak ditemukan. Lihat daftar di tab Model.", "en": "That model or package was not found. See the list in the Models tab."},
    "model_load_failed": {"id": "Model tidak bisa dimuat; filenya mungkin rusak. Coba unduh ulang di tab Model.", "en": "The model could not be loaded; its files may be damaged. Try downloading it again in the Models tab."},
    "unsafe_file": {"id": "File model ini tidak aman dimuat (format pickle). Pakai versi .safetensors.", "en": "This model file is not safe to load (pickle format). Use a .safetensors version."},
    "network_unavailable": {"id": "Tidak bisa tersambung ke internet untuk mengunduh. Periksa koneksi, atau pilih paket yang sudah terunduh.", "en": "Could not reach the internet to download. Check the connection, or pick a package that is already downloaded."},
    "out_of_memory": {"id": "Memori tidak cukup. Kecilkan ukuran gambar atau jumlah gambar per batch.", "en": "Not enough memory. Lower the image size or the batch size."},
    "storage_unavailable": {"id": "Gambar tidak bisa disimpan: disk penuh atau folder tidak bisa ditulisi.", "en": "The image could not be saved: the disk is full or the folder is not writable."},
    "dependency_missing": {"id": "Ada pustaka yang belum terpasang.", "en": "A library is not installed."},
    "cancelled": {"id": "Dibatalkan.", "en": "Cancelled."},
    "non_finite_output": {"id": "Model menghasilkan gambar hitam (angka tidak valid), juga setelah dicoba ulang dengan VAE fp32; tidak ada yang disimpan. Coba tipe data fp32 atau VAE khusus fp16.", "en": "The model produced a black image (invalid numbers), also after a retry with an fp32 VAE; nothing was saved. Try the fp32 data type or a VAE made for fp16."},
    "queue_full": {"id": "Antrean sedang penuh. Coba lagi beberapa saat lagi.", "en": "The queue is full. Try again in a moment."},
    "shutting_down": {"id": "Server sedang dimatikan. Coba lagi setelah server menyala kembali.", "en": "The server is shutting down. Try again once it is back."},
    "queue_unavailable": {"id": "Server tidak bisa mencatat antrean di disk, jadi permintaan Anda belum diterima. Periksa folder GAMBARKAN_HOME (mungkin disk penuh atau folder tidak bisa ditulisi).", "en": "The server cannot record its queue on disk, so the request was not accepted. Check the GAMBARKAN_HOME folder (full or not writable)."},
    "not_found": {"id": "Data yang dicari tidak ada; mungkin sudah dihapus.", "en": "Nothing found; it may have been deleted."},
    "history_unavailable": {"id": "Riwayat tidak bisa dibuka saat ini.", "en": "The history cannot be opened right now."},
    "download_refused": {"id": "Unduhan itu ditolak demi keamanan.", "en": "That download was refused for safety."},
    "invalid_path": {"id": "Jalur file itu tidak diizinkan.", "en": "That file path is not allowed."},
    "auth_required": {"id": "Perlu kunci API untuk server ini.", "en": "This server needs an API key."},
    "invalid_image_name": {"id": "Nama gambar itu tidak diizinkan.", "en": "That image name is not allowed."},
    "job_finished": {"id": "Pekerjaan itu sudah selesai.", "en": "That job has already finished."},
    "invalid_batch_input": {"id": "Berkas daftar prompt (batch) tidak bisa dipakai.", "en": "The batch input cannot be used."},
    "not_implemented": {"id": "Fitur itu belum ada di gambarkan.", "en": "gambarkan cannot do that yet."},
    "internal_error": {
        "id": "Terjadi kesalahan yang tidak terduga saat membuat gambar. Coba lagi; kalau terulang, jalankan `gambarkan doctor`.",
        "en": "Something unexpected went wrong while making the image. Try again; if it happens again, run `gambarkan doctor`.",
    },
}

#: Request field names as a person reads them in Indonesian (the ``field`` param).
FIELDS_ID: dict[str, str] = {
    "width": "lebar",
    "height": "tinggi",
    "steps": "langkah",
    "cfg": "CFG",
    "seed": "seed",
    "batch_size": "gambar per batch",
    "count": "jumlah batch",
    "clip_skip": "clip skip",
    "prompt": "prompt",
    "negative_prompt": "prompt negatif",
    "sampler": "sampler",
    "strength": "kekuatan",
}

#: How each surface starts an error line.
PREFIX = {"id": "galat", "en": "error"}


def _indonesian(params: Mapping[str, object]) -> dict[str, object]:
    """``params`` as an Indonesian sentence needs them: field names translated, decimal commas."""
    out: dict[str, object] = {}
    for name, value in params.items():
        if name == "field" and isinstance(value, str):
            value = FIELDS_ID.get(value, value)
        elif isinstance(value, float):
            value = f"{value:g}".replace(".", ",")
        out[name] = value
    return out


def texts(code: str, params: Mapping[str, object], lang: str) -> tuple[str, str | None] | None:
    """(message, hint) for ``code`` in ``lang`` from the tables, or None when the code has no text there."""
    if lang == "id":
        entry = ID.get(code)
        if entry is None:
            return None
        values, did_you_mean = _indonesian(params), "maksud Anda {close}? "
    else:
        entry = MESSAGES.get(code)
        if entry is None:
            return None
        values, did_you_mean = dict(params), "did you mean {close}? "
    message, hint = entry
    return fill(message, values, did_you_mean), (fill(hint, values, did_you_mean) or None) if hint else None


def render(error: BaseException, lang: str = DEFAULT_LANG) -> str:
    """One line for ``error`` in ``lang``: ``message (hint)``.

    English is the error's own text. Indonesian comes from ``ID`` by code; an error raised without
    an Indonesian text (old code) keeps its English line, so nothing is ever lost.
    """
    if not isinstance(error, GambarkanError):
        first = str(error).splitlines()[0] if str(error) else ""
        return f"{type(error).__name__}: {first}" if first else type(error).__name__
    if lang == "id":
        found = texts(error.code, error.params, "id")
        if found is not None:
            message, hint = found
            return f"{message} ({hint})" if hint else message
    return str(error)


def has_text(error: GambarkanError, lang: str) -> bool:
    """Whether ``error``'s code has its own text in ``lang`` (not just its kind's general sentence)."""
    return error.code in ID if lang == "id" else (error.code in MESSAGES or error.code in EXPLICIT_CODES)


def kind_sentence(error: BaseException, lang: str = DEFAULT_LANG) -> str:
    """The general sentence for ``error``'s kind ("Ada pengaturan yang tidak bisa dipakai.")."""
    code = error.code if isinstance(error, GambarkanError) else "internal_error"
    entry = KINDS.get(code) or (KINDS.get(error.kind) if isinstance(error, GambarkanError) else None)
    entry = entry or KINDS["internal_error"]  # a code we do not know is our fault
    return entry.get(lang) or entry[DEFAULT_LANG]


def cli_language(environ: Mapping[str, str] | None = None) -> str:
    """The CLI's language: ``GAMBARKAN_LANG`` (id/en) if set, else Indonesian for an Indonesian locale, else English."""
    env = os.environ if environ is None else environ
    chosen = env.get("GAMBARKAN_LANG", "").strip().lower()[:2]
    if chosen in LANGUAGES:
        return chosen
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(name, "")
        if value:
            return "id" if value.lower().startswith(("id", "in_")) else "en"
    return "en"


def error_line(error: BaseException, lang: str) -> str:
    """``gambarkan: galat: lebar 70 bukan kelipatan 8 (coba 72)``: the CLI's one line."""
    return f"gambarkan: {PREFIX.get(lang, 'error')}: {render(error, lang)}"
