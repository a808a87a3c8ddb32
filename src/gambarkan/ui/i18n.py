"""Every string of the web UI, in Bahasa Indonesia (the default) and English.

Plain data: ``t(key, lang, **values)`` picks a string and fills ``{placeholders}``. Error
explanations are keyed by ``GambarkanError.code`` so a failure reads naturally in either
language, with the engine's precise one-line message shown under it.
"""

from __future__ import annotations

from typing import Any

from gambarkan.i18n import KINDS, has_text, kind_sentence, render

LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT_LANG = "id"

STRINGS: dict[str, dict[str, str]] = {
    "title": {"id": "# gambarkan", "en": "# gambarkan"},
    "tagline": {
        "id": "Tulis apa yang ingin Anda lihat, dalam bahasa Indonesia atau bahasa Inggris, lalu tekan **Gambarkan**.",
        "en": "Write what you want to see, in Indonesian or English, then press **Generate**.",
    },
    "language": {"id": "Bahasa tampilan", "en": "Interface language"},
    # tabs
    "tab_create": {"id": "Buat gambar", "en": "Create"},
    "tab_history": {"id": "Riwayat", "en": "History"},
    "tab_models": {"id": "Model", "en": "Models"},
    # prompt area
    "prompt": {"id": "Prompt", "en": "Prompt"},
    "prompt_placeholder": {
        "id": "contoh: kucing oranye tidur di atas sofa, cahaya sinematik",
        "en": "e.g. an orange cat asleep on a sofa, cinematic lighting",
    },
    "negative": {"id": "Prompt negatif (yang tidak diinginkan)", "en": "Negative prompt (what to leave out)"},
    "negative_placeholder": {
        "id": "contoh: buram, teks, tanda air (kosongkan untuk memakai bawaan paket)",
        "en": "e.g. blurry, text, watermark (leave empty for the package's default)",
    },
    "translate_on": {"id": "Terjemahkan ke bahasa Inggris", "en": "Translate to English"},
    "translator": {"id": "Penerjemah", "en": "Translator"},
    "preview": {"id": "Yang akan dibaca model (boleh diubah)", "en": "What the model will read (you can edit it)"},
    "preview_info_auto": {"id": "Diterjemahkan dengan: {backend}", "en": "Translated with: {backend}"},
    "preview_info_same": {"id": "Sudah dalam bahasa Inggris; tidak ada yang perlu diterjemahkan.", "en": "Already English: nothing to translate."},
    "preview_info_off": {"id": "Terjemahan dimatikan: prompt dipakai persis seperti yang Anda tulis.", "en": "Translation is off: the prompt is used exactly as written."},
    "preview_info_edited": {"id": "Anda mengubah terjemahannya; versi Anda yang dipakai.", "en": "You edited the translation; your version is used."},
    # package
    "package": {"id": "Paket model", "en": "Model package"},
    "package_default": {"id": "(model bawaan)", "en": "(default model)"},
    "package_info": {
        "id": "{description}\n\nUkuran unduhan: {size} · {state} · Lisensi: {license}",
        "en": "{description}\n\nDownload size: {size} · {state} · Licence: {license}",
    },
    "package_info_local": {
        "id": "{description}\n\nModel di komputer ini: `{source}` · Lisensi: {license}",
        "en": "{description}\n\nModel on this machine: `{source}` · Licence: {license}",
    },
    "license_unknown": {"id": "belum diketahui (lihat halaman model itu sendiri)", "en": "unknown (check the model's own page)"},
    "downloaded": {"id": "✅ sudah terunduh", "en": "✅ downloaded"},
    "not_downloaded": {"id": "⬇️ belum terunduh (diunduh otomatis saat pertama dipakai)", "en": "⬇️ not downloaded (fetched on first use)"},
    "default_model_info": {"id": "Model bawaan: `{model}`", "en": "Default model: `{model}`"},
    "server_model": {"id": "Model server ini: {model} (bawaan)", "en": "This server's model: {model} (default)"},
    "server_model_info": {
        "id": "Server ini dijalankan dengan model `{model}`; itulah yang dipakai kecuali Anda memilih paket lain.",
        "en": "This server was started with the model `{model}`; it is used unless you choose another package.",
    },
    "downloaded_short": {"id": "✅ terunduh", "en": "✅ downloaded"},
    "not_downloaded_short": {"id": "⬇️ belum terunduh", "en": "⬇️ not downloaded"},
    "local_folder": {"id": "folder sendiri", "en": "own folder"},
    "license_unknown_short": {"id": "lisensi belum diketahui", "en": "licence unknown"},
    "speed_fast": {"id": "cepat", "en": "fast"},
    "speed_medium": {"id": "sedang", "en": "medium"},
    "speed_slow": {"id": "lambat", "en": "slow"},
    # translators in plain words
    "translator_auto": {"id": "Otomatis (pilih yang terbaik yang tersedia)", "en": "Automatic (the best one available)"},
    "translator_glossary": {"id": "Kamus bawaan (luring, langsung jalan)", "en": "Built-in glossary (offline, instant)"},
    "translator_marian": {"id": "Model saraf Marian (luring, unduh ±300 MB sekali)", "en": "Marian neural model (offline, ~300 MB download once)"},
    "translator_nllb": {"id": "Model saraf NLLB (juga bahasa daerah, unduh ±2,5 GB)", "en": "NLLB neural model (regional languages too, ~2.5 GB download)"},
    "translator_google": {"id": "Google Terjemahan (daring: prompt dikirim ke Google)", "en": "Google Translate (online: the prompt leaves this machine)"},
    # advanced
    "advanced": {"id": "Pengaturan lanjutan", "en": "Advanced options"},
    "sampler": {"id": "Sampler", "en": "Sampler"},
    "from_package": {"id": "bawaan paket", "en": "package default"},
    "steps": {"id": "Langkah (0 = bawaan paket)", "en": "Steps (0 = package default)"},
    "cfg": {"id": "CFG: seberapa patuh pada prompt (-1 = bawaan paket)", "en": "CFG: how closely to follow the prompt (-1 = package default)"},
    "width": {"id": "Lebar (0 = bawaan paket)", "en": "Width (0 = package default)"},
    "height": {"id": "Tinggi (0 = bawaan paket)", "en": "Height (0 = package default)"},
    "portrait": {"id": "Potret", "en": "Portrait"},
    "square": {"id": "Persegi", "en": "Square"},
    "landscape": {"id": "Lanskap", "en": "Landscape"},
    "seed": {"id": "Seed (-1 = acak)", "en": "Seed (-1 = random)"},
    "seed_random": {"id": "🎲 Acak", "en": "🎲 Random"},
    "seed_reuse": {"id": "♻️ Pakai seed terakhir", "en": "♻️ Reuse last seed"},
    "batch_size": {"id": "Gambar per batch", "en": "Batch size"},
    "batch_count": {"id": "Jumlah batch", "en": "Batch count"},
    "clip_skip": {"id": "Clip skip (0 = bawaan paket)", "en": "Clip skip (0 = package default)"},
    # actions and results
    "generate": {"id": "Gambarkan", "en": "Generate"},
    "cancel": {"id": "Batal", "en": "Cancel"},
    "gallery": {"id": "Hasil", "en": "Results"},
    "live_preview": {"id": "Pratinjau", "en": "Preview"},
    "parameters": {"id": "Parameter gambar yang dipilih", "en": "Parameters of the selected image"},
    "send_to_prompt": {"id": "Pakai pengaturan ini", "en": "Use these settings"},
    "caption": {"id": "seed {seed}", "en": "seed {seed}"},
    # status lines
    "status_ready": {"id": "Siap.", "en": "Ready."},
    "status_queued": {"id": "Menunggu giliran: urutan ke-{position} dalam antrean.", "en": "Waiting: number {position} in the queue."},
    "status_loading": {"id": "Menyiapkan model… (pertama kali biasanya agak lama)", "en": "Preparing the model… (the first time can take a while)"},
    "status_step": {"id": "Langkah {step}/{steps} · gambar {image}/{images}", "en": "Step {step}/{steps} · image {image}/{images}"},
    "status_done": {
        "id": "Selesai: {count} gambar dalam {seconds} detik. Seed pertama: {seed}.",
        "en": "Done: {count} image(s) in {seconds} s. First seed: {seed}.",
    },
    "status_translated": {"id": "Prompt yang dipakai: {prompt}", "en": "Prompt used: {prompt}"},
    "status_cancelling": {"id": "Membatalkan… proses berhenti di langkah berikutnya.", "en": "Cancelling… stopping at the next step."},
    "status_cancelled": {"id": "⏹️ Dibatalkan. Gambar yang sudah jadi tetap tersimpan.", "en": "⏹️ Cancelled. Images already finished are kept."},
    "status_eta": {"id": "sisa ±{seconds} detik", "en": "about {seconds} s left"},
    "size_snapped": {"id": "Ukuran dibulatkan ke kelipatan 8: {width}×{height}.", "en": "Size rounded to a multiple of 8: {width}×{height}."},
    "status_nothing": {"id": "Tidak ada gambar yang sedang dibuat.", "en": "Nothing is being generated."},
    "sent": {"id": "Pengaturan gambar dengan seed {seed} sudah dimasukkan ke formulir.", "en": "The settings of the seed {seed} image are back in the form."},
    "select_first": {"id": "Pilih dulu satu gambar di galeri.", "en": "Select an image in the gallery first."},
    "select_package": {"id": "Pilih dulu paket yang ingin diunduh.", "en": "Choose the package to download first."},
    # history tab
    "history_search": {"id": "Cari prompt", "en": "Search prompts"},
    "history_refresh": {"id": "Cari", "en": "Search"},
    "history_table": {"id": "Riwayat pembuatan", "en": "Generation history"},
    "history_gallery": {"id": "Riwayat pembuatan (klik gambar untuk melihat pengaturannya)", "en": "Generation history (click an image for its settings)"},
    "history_details": {"id": "Pengaturan yang dipilih", "en": "Selected settings"},
    "history_pick_first": {"id": "Klik dulu satu gambar di riwayat.", "en": "Click an image in the history first."},
    "history_id": {"id": "Nomor riwayat", "en": "History id"},
    "history_reuse": {"id": "Pakai lagi", "en": "Use again"},
    "history_delete": {"id": "Hapus (beserta file gambarnya)", "en": "Delete (with its files)"},
    "history_deleted": {"id": "Riwayat nomor {id} dihapus ({files} file).", "en": "History entry {id} deleted ({files} file(s))."},
    "history_loaded": {"id": "Pengaturan dari riwayat nomor {id} sudah dimasukkan ke formulir.", "en": "The settings of history entry {id} are in the form."},
    "history_empty": {"id": "Belum ada riwayat.", "en": "No history yet."},
    "col_id": {"id": "no.", "en": "id"},
    "col_when": {"id": "waktu", "en": "when"},
    "col_status": {"id": "status", "en": "status"},
    "col_prompt": {"id": "prompt", "en": "prompt"},
    "col_package": {"id": "paket", "en": "package"},
    "col_seed": {"id": "seed", "en": "seed"},
    "run_done": {"id": "selesai", "en": "done"},
    "run_cancelled": {"id": "dibatalkan", "en": "cancelled"},
    "run_failed": {"id": "gagal", "en": "failed"},
    "run_running": {"id": "berjalan", "en": "running"},
    "run_interrupted": {"id": "terhenti", "en": "interrupted"},
    # models tab
    "models_table": {"id": "Paket model", "en": "Model packages"},
    "models_refresh": {"id": "Muat ulang", "en": "Refresh"},
    "models_pick": {"id": "Paket", "en": "Package"},
    "models_download": {"id": "Unduh", "en": "Download"},
    "models_downloaded": {"id": "Paket {name} siap dipakai.", "en": "Package {name} is ready."},
    "models_disk": {"id": "Ruang disk yang dipakai paket: {size}", "en": "Disk used by packages: {size}"},
    "col_name": {"id": "nama", "en": "name"},
    "col_title": {"id": "paket", "en": "package"},
    "col_purpose": {"id": "cocok untuk", "en": "good for"},
    "col_family": {"id": "keluarga model", "en": "model family"},
    "col_speed": {"id": "kecepatan", "en": "speed"},
    "col_kind": {"id": "jenis", "en": "type"},
    "col_size": {"id": "ukuran", "en": "size"},
    "col_installed": {"id": "terunduh", "en": "downloaded"},
    "col_license": {"id": "lisensi", "en": "licence"},
    "yes": {"id": "ya", "en": "yes"},
    "no": {"id": "tidak", "en": "no"},
    # errors
    "error_title": {"id": "Gagal", "en": "Failed"},
    "error_empty_prompt": {"id": "Tulis dulu apa yang ingin digambar di kolom prompt.", "en": "Write what to draw in the prompt box first."},
    "error_bad_number": {"id": "{field} harus berupa angka.", "en": "{field} must be a number."},
    "error_unexpected": {
        "id": "Terjadi kesalahan yang tidak terduga ({kind}). Coba lagi; kalau terulang, jalankan `gambarkan doctor`.",
        "en": "Something unexpected went wrong ({kind}). Try again; if it happens again, run `gambarkan doctor`.",
    },
}

#: One sentence per error kind (the class's code), shared with the CLI: ``gambarkan.i18n.KINDS``.
ERRORS: dict[str, dict[str, str]] = KINDS


def t(key: str, lang: str = DEFAULT_LANG, **values: Any) -> str:
    """The string ``key`` in ``lang`` (falling back to Indonesian), with ``values`` filled in."""
    entry = STRINGS[key]
    text = entry.get(lang) or entry[DEFAULT_LANG]
    return text.format(**values) if values else text


def decimal(value: float, lang: str = DEFAULT_LANG, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals, written the way ``lang`` writes them (Indonesian: 2,5)."""
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "id" else text


def _markdown_safe(text: str) -> str:
    """``text`` for a Markdown box: commands in backticks stay code, HTML and emphasis marks stay plain."""
    return text.replace("<", "&lt;").replace("*", "\\*")


def explain_error(error: BaseException, lang: str = DEFAULT_LANG) -> str:
    """A readable Markdown message for ``error`` in ``lang``.

    An error with a text in ``lang`` (by its code) is that line; an older one without it gets the
    general sentence of its kind, then its exact (English) detail.
    """
    from gambarkan.errors import GambarkanError

    title = t("error_title", lang)
    if isinstance(error, GambarkanError):
        if error.code != error.kind and has_text(error, lang):
            return f"**{title}:** {_markdown_safe(render(error, lang))}"
        return f"**{title}:** {kind_sentence(error, lang)}\n\n{_markdown_safe(str(error))}"
    return f"**{title}:** {t('error_unexpected', lang, kind=type(error).__name__)}"
