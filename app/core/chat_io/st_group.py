"""SillyTavern group chats in and out: `groups/<id>.json` and `group chats/<chat>.jsonl`.

A SillyTavern group file names its members by avatar file (`members`, `disabled_members` for
the muted ones), its settings (`activation_strategy` 0 natural / 1 list / 2 manual,
`generation_mode` 0 swap / 1 join / 2 join with muted, `generation_mode_join_prefix` and
`_suffix`, `allow_self_responses`), its chats by name (`chats`, `chat_id` the current one) and
their metadata (`chat_metadata` for the current chat, `past_metadata[name]` for the others),
as `createGroup` and `createNewGroupChat` in `public/scripts/group-chats.js` write them.
A group chat file has no metadata line (`saveGroupChat` writes the messages only); each
reply line names its speaker (`name`, and `original_avatar`, the member's avatar file).

Members are found in the library by the names the chat lines give their avatars, else by the
avatar file's name; a member not in the library is added as a card holding only its name (and
said so), so no line loses its speaker. Fields Parlor has no place for are kept and written
back.

RisuAI (its source, `src/ts/storage/database.svelte.ts`, December 2025) keeps a group as one
entry of its character list, `groupChat` with `type: 'group'`: `characters` (member ids),
`characterTalks` (talkativeness per member), `characterActive` (unmuted), `chats`, and each
message names its speaker in `saying` (a member's id). It lives inside RisuAI's database
rather than in a file of its own, so it is not read here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from app.core.chat_io.errors import ChatIOError
from app.core.chat_io.parlor_block import KEY, decode_rest
from app.core.chat_io.st_export import st_chat_rows
from app.core.chat_io.st_import import line_nodes
from app.core.chat_io.st_read import StLine, parse_st_bytes, read_st_file
from app.core.store import Message, Store
from app.core.store.groups import CardMode, Group, GroupSettings, Strategy

_STRATEGIES = {0: Strategy.NATURAL, 1: Strategy.LIST, 2: Strategy.MANUAL}
_MODES = {0: CardMode.SWAP, 1: CardMode.JOIN, 2: CardMode.JOIN_MUTED}
_MAPPED = {
    "name",
    "members",
    "disabled_members",
    "activation_strategy",
    "generation_mode",
    "generation_mode_join_prefix",
    "generation_mode_join_suffix",
    "allow_self_responses",
    "chats",
    "chat_id",
    "chat_metadata",
    "past_metadata",
}


@dataclass
class GroupImport:
    group_id: int
    chat_ids: list[int]
    added_characters: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_group_file(path: str | Path) -> dict[str, Any]:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise ChatIOError(f"{path}: could not be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChatIOError(f"{path}: not a SillyTavern group file ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("members"), list):
        raise ChatIOError(f"{path}: not a SillyTavern group file (no `members` list)")
    if not all(isinstance(m, str) for m in raw["members"]):
        raise ChatIOError(f"{path}: `members` must be avatar file names")
    return raw


def group_settings(raw: dict[str, Any], warnings: list[str]) -> GroupSettings:
    strategy = _STRATEGIES.get(raw.get("activation_strategy", 0))
    if strategy is None:
        warnings.append(
            f"activation strategy {raw.get('activation_strategy')!r} is not one "
            "Parlor has; natural order is used"
        )
    mode = _MODES.get(raw.get("generation_mode", 0), CardMode.SWAP)

    def text(key: str) -> str:
        return raw[key] if isinstance(raw.get(key), str) else ""

    return GroupSettings(
        strategy=strategy or Strategy.NATURAL,
        card_mode=mode,
        join_prefix=text("generation_mode_join_prefix"),
        join_suffix=text("generation_mode_join_suffix"),
        allow_self_responses=raw.get("allow_self_responses") is True,
    )


def _chat_lines(path: Path) -> list[dict[str, Any]]:
    parsed = read_st_file(path)
    return [m.row for m in parsed.messages]


def _avatar_names(chat_files: list[Path]) -> dict[str, str]:
    """The name each avatar file speaks under in the chats (the newest line wins)."""
    names: dict[str, str] = {}
    for path in chat_files:
        for row in _chat_lines(path):
            avatar, name = row.get("original_avatar"), row.get("name")
            if isinstance(avatar, str) and isinstance(name, str) and name:
                names[avatar] = name
    return names


def _resolve_members(
    store: Store, avatars: list[str], names: dict[str, str], result: GroupImport
) -> dict[str, int]:
    ids: dict[str, int] = {}
    for avatar in avatars:
        name = names.get(avatar) or Path(avatar).stem or avatar
        found = store.characters.find(name)
        if found:
            ids[avatar] = found[0].id
        else:
            ids[avatar] = store.characters.add({"name": name}, extra=None)
            result.added_characters.append(name)
    if result.added_characters:
        result.warnings.append(
            "Not in the library, added with only their names: " + ", ".join(result.added_characters)
        )
    return ids


def import_st_group(
    store: Store, group_path: str | Path, chat_files: list[str | Path] | None = None
) -> GroupImport:
    """Import a group and its chats (by default `../group chats/<name>.jsonl` next to the
    `groups` folder); each chat in one transaction, each line with its speaker."""
    group_path = Path(group_path)
    raw = read_group_file(group_path)
    files = (
        [Path(p) for p in chat_files]
        if chat_files is not None
        else _default_chat_files(group_path, raw)
    )
    result = GroupImport(0, [])
    ids = _resolve_members(store, raw["members"], _avatar_names(files), result)
    settings = group_settings(raw, result.warnings)
    extra = {k: v for k, v in raw.items() if k not in _MAPPED}
    extra["avatars"] = {str(cid): avatar for avatar, cid in ids.items()}
    raw_name = raw.get("name")
    name = raw_name if isinstance(raw_name, str) and raw_name.strip() else "Group"
    gid = store.groups.create(name, list(dict.fromkeys(ids.values())), settings, extra=extra)
    muted = raw.get("disabled_members")
    for avatar in muted if isinstance(muted, list) else []:
        if avatar in ids:
            store.groups.set_muted(gid, ids[avatar], True)
    result.group_id = gid
    for path in files:
        result.chat_ids.append(_import_chat(store, gid, path, raw, ids, result.warnings))
    return result


def _default_chat_files(group_path: Path, raw: dict[str, Any]) -> list[Path]:
    folder = group_path.parent.parent / "group chats"
    names = raw.get("chats")
    files = [folder / f"{n}.jsonl" for n in names or [] if isinstance(n, str)]
    return [f for f in files if f.is_file()]


def _chat_metadata(raw: dict[str, Any], chat_name: str) -> dict[str, Any]:
    current = raw.get("chat_metadata")
    if chat_name == raw.get("chat_id") and isinstance(current, dict):
        return dict(current)
    past = raw.get("past_metadata")
    kept = past.get(chat_name) if isinstance(past, dict) else None
    return dict(kept) if isinstance(kept, dict) else {}


def _import_chat(
    store: Store,
    gid: int,
    path: Path,
    raw: dict[str, Any],
    ids: dict[str, int],
    warnings: list[str],
) -> int:
    parsed = parse_st_bytes(path.read_bytes(), str(path))
    parsed.warnings = [w for w in parsed.warnings if "no metadata line" not in w]
    if parsed.problems:
        listed = "; ".join(str(p) for p in parsed.problems[:10])
        raise ChatIOError(
            f"{path}: {len(parsed.problems)} malformed line(s): {listed}", parsed.problems
        )
    nodes, leaf, texts = line_nodes(parsed)
    meta = _chat_metadata(raw, path.stem)
    block_items: dict[int, dict[str, Any]] = {}
    if KEY in meta:
        block = meta.pop(KEY)
        block_items = _block_items(block)
        nodes += decode_rest(block, texts, parsed.warnings)
    speakers = _Speakers(store, ids)
    for node in nodes:
        if node.role == "assistant":
            node.speaker_id = speakers.find(_said_by(node.key, parsed.messages, block_items))
    warnings += parsed.warnings
    if speakers.added:
        warnings.append(
            "Speakers of past lines not in the library, added with only their names: "
            + ", ".join(speakers.added)
        )
    return store.groups.create_chat_from_nodes(
        gid, path.stem, nodes, leaf, {"chat_metadata": meta} if meta else None
    )


def _block_items(block: Any) -> dict[int, dict[str, Any]]:
    """The tree block's nodes by id (each names its speaker when it has one)."""
    items = block.get("nodes") if isinstance(block, dict) else None
    return {
        item["id"]: item
        for item in items or []
        if isinstance(item, dict) and isinstance(item.get("id"), int)
    }


def _said_by(
    key: Any, lines: list[StLine], block_items: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """Where a node's speaker is written: the line for its shown swipe, the swipe's own
    `swipe_info` entry for another swipe (Parlor writes one there when a swipe has another
    speaker; a SillyTavern swipe has the line's), the block's node for other branches."""
    if key[0] == "p":
        return block_items.get(key[1], {})
    number, swipe = key
    row = lines[number].row
    infos = row.get("swipe_info")
    entry = infos[swipe] if isinstance(infos, list) and swipe < len(infos) else None
    if swipe != lines[number].swipe_id and isinstance(entry, dict) and entry.get("name"):
        return entry
    return dict(row)


class _Speakers:
    """A line's speaker: a member by its avatar file, else by name; else a character of the
    library by name (a member who has left the group since); else one added with only its
    name, so no line loses its speaker."""

    def __init__(self, store: Store, ids: dict[str, int]) -> None:
        self.store, self.ids = store, ids
        self.by_name = {store.characters.card(cid).get("name"): cid for cid in ids.values()}
        self.added: list[str] = []

    def find(self, said: dict[str, Any]) -> int | None:
        avatar, name = said.get("original_avatar"), said.get("name")
        if isinstance(avatar, str) and avatar in self.ids:
            return self.ids[avatar]
        if not isinstance(name, str) or not name.strip():
            return None
        if name not in self.by_name:
            found = self.store.characters.find(name)
            if found:
                self.by_name[name] = found[0].id
            else:
                self.by_name[name] = self.store.characters.add({"name": name}, extra=None)
                self.added.append(name)
        return self.by_name[name]


# --- export ---------------------------------------------------------------------------
def avatar_of(group: Group, character_id: int, names: dict[int, str]) -> str:
    """The member's avatar file name: the one it was imported with, else `Name.png`."""
    kept = group.extra.get("avatars")
    own = kept.get(str(character_id)) if isinstance(kept, dict) else None
    return own if isinstance(own, str) and own else f"{names.get(character_id, 'character')}.png"


def force_avatar(avatar: str) -> str:
    """The thumbnail address SillyTavern shows a group line's face from (`getThumbnailUrl`,
    the file name as `encodeURIComponent` writes it)."""
    return "/thumbnail?type=avatar&file=" + quote(avatar, safe="-_.!~*'()")


_SPEAKER_KEYS = ("name", "original_avatar", "force_avatar")


def _speaker_fields(group: Group, speaker_id: int, names: dict[int, str]) -> dict[str, str]:
    """The fields SillyTavern gives a member's line (`getFirstCharacterMessage`,
    `saveReply` in a group): its name, avatar file and thumbnail."""
    avatar = avatar_of(group, speaker_id, names)
    return {
        "name": names[speaker_id],
        "original_avatar": avatar,
        "force_avatar": force_avatar(avatar),
    }


def group_chat_rows(
    store: Store, chat_id: int, group: Group
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The chat's metadata and its lines, each reply under its speaker's name and avatar.

    A line has one speaker in SillyTavern; a swipe spoken by another member (a "let speak"
    after the same message) names its own in its `swipe_info` entry, and each reply on the
    branches kept in the tree block names its speaker, so an import gives every message of
    every branch its speaker back."""
    rows = st_chat_rows(store, chat_id)
    messages = store.messages.of_chat(chat_id)
    by_parent: dict[int | None, list[Message]] = defaultdict(list)
    for msg in messages:
        by_parent[msg.parent_id].append(msg)
    names = store.groups.speaker_names({m.speaker_id for m in messages if m.speaker_id})
    path = store.messages.active_path(chat_id)
    for row, msg in zip(rows[1:], path, strict=True):
        if msg.role == "assistant" and msg.speaker_id in names:
            row.update(_speaker_fields(group, msg.speaker_id, names))
        infos = row.get("swipe_info") or []
        for entry, swipe in zip(infos, by_parent[msg.parent_id], strict=False):
            if swipe.speaker_id != msg.speaker_id and swipe.speaker_id in names:
                entry.update(_speaker_fields(group, swipe.speaker_id, names))
            else:  # the line's own speaker: nothing to say (a copy kept from an import)
                for key in _SPEAKER_KEYS:
                    entry.pop(key, None)
    meta = rows[0].get("chat_metadata", {})
    by_id = {m.id: m for m in messages}
    for item in _block_items(meta.get(KEY)).values():
        speaker = by_id[item["id"]].speaker_id if item["id"] in by_id else None
        if speaker in names:
            item.update(_speaker_fields(group, speaker, names))
    return meta, rows[1:]


def export_st_group(store: Store, group_id: int, folder: str | Path) -> list[Path]:
    """Write `groups/<id>.json` and `group chats/<chat>.jsonl` under `folder` (the layout
    of SillyTavern's data folder); returns the files written."""
    group = store.groups.get(group_id)
    folder = Path(folder)
    (folder / "groups").mkdir(parents=True, exist_ok=True)
    (folder / "group chats").mkdir(parents=True, exist_ok=True)
    names = {m.character_id: m.name for m in group.members}
    chats = list(reversed(store.groups.chats(group_id)))  # oldest first, the newest current
    written: list[Path] = []
    past: dict[str, dict[str, Any]] = {}
    titles: list[str] = []
    for chat in chats:
        meta, lines = group_chat_rows(store, chat.id, group)
        title = _unique(_safe(chat.title), titles)
        titles.append(title)
        past[title] = meta
        target = folder / "group chats" / f"{title}.jsonl"
        target.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8"
        )
        written.append(target)
    raw = _group_json(group, names, titles, past)
    target = folder / "groups" / f"{raw['id']}.json"
    target.write_text(json.dumps(raw, ensure_ascii=False, indent=4), encoding="utf-8")
    return [target, *written]


def _group_json(
    group: Group, names: dict[int, str], titles: list[str], past: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    s = group.settings
    strategy = {v: k for k, v in _STRATEGIES.items()}[s.strategy]
    mode = {v: k for k, v in _MODES.items()}[s.card_mode]
    current = titles[-1] if titles else ""
    extra = {k: v for k, v in group.extra.items() if k != "avatars"}
    return {
        "id": str(extra.pop("id", group.id)),
        **extra,
        "name": group.name,
        "members": [avatar_of(group, m.character_id, names) for m in group.members],
        "disabled_members": [
            avatar_of(group, m.character_id, names) for m in group.members if m.muted
        ],
        "activation_strategy": strategy,
        "generation_mode": mode,
        "generation_mode_join_prefix": s.join_prefix,
        "generation_mode_join_suffix": s.join_suffix,
        "allow_self_responses": s.allow_self_responses,
        "chat_id": current,
        "chats": titles,
        "chat_metadata": past.get(current, {}),
        "past_metadata": {t: m for t, m in past.items() if t != current},
    }


def _safe(title: str) -> str:
    cleaned = "".join("_" if c in '<>:"/\\|?*' or ord(c) < 32 else c for c in title).strip()
    return cleaned or "chat"


def _unique(title: str, taken: list[str]) -> str:
    out, n = title, 2
    while out in taken:
        out, n = f"{title} ({n})", n + 1
    return out
