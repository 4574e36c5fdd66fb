"""Small schematic pictures of the four families for the home page: inline SVG built from the
family's structure (which stacks, which way attention may look, where a router sits), so the home
page draws them without importing a plotting or model library. Pure Python."""

from __future__ import annotations

BLUE, ORANGE, GREEN, GREY, INK = "#0072B2", "#B35900", "#007A5A", "#6B6B6B", "#1A1A1A"


def _box(x: float, y: float, w: float, h: float, label: str, color: str) -> str:
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="white" stroke="{color}" stroke-width="2.5"/>'
        f'<text x="{x + w / 2}" y="{y + h / 2 + 5}" text-anchor="middle" font-size="14" fill="{INK}">{label}</text>'
    )


def _tokens(x0: float, y: float, n: int, label: str = "") -> str:
    dots = "".join(f'<circle cx="{x0 + 22 * i}" cy="{y}" r="7" fill="{GREY}"/>' for i in range(n))
    text = f'<text x="{x0 + 22 * n + 4}" y="{y + 5}" font-size="13" fill="{INK}">{label}</text>' if label else ""
    return dots + text


def _arrow(x1: float, y1: float, x2: float, y2: float, color: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="2"{dash} '
        'marker-end="url(#head)"/>'
    )


def _svg(body: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 300 170" width="100%" role="img" aria-label="{title}" '
        'font-family="Helvetica, Arial, sans-serif">'
        f'<title>{title}</title><defs><marker id="head" markerWidth="8" markerHeight="8" refX="7" refY="4" '
        f'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{INK}"/></marker></defs>{body}</svg>'
    )


def encoder() -> str:
    body = _tokens(40, 150, 6, "text in") + _box(30, 60, 150, 60, "encoder blocks", BLUE)
    body += "".join(_arrow(40 + 22 * i, 142, 40 + 22 * i, 124, INK) for i in range(6))
    body += f'<text x="195" y="85" font-size="13" fill="{BLUE}">every token sees</text>'
    body += f'<text x="195" y="102" font-size="13" fill="{BLUE}">left and right</text>'
    body += _tokens(40, 30, 6, "one vector each")
    return _svg(body, "Encoder-only: one bidirectional stack, a vector per token")


def decoder() -> str:
    body = _tokens(40, 150, 5, "text so far") + _box(30, 60, 130, 60, "decoder blocks", BLUE)
    body += "".join(_arrow(40 + 22 * i, 142, 40 + 22 * i, 124, INK) for i in range(5))
    body += f'<text x="175" y="85" font-size="13" fill="{BLUE}">each token sees</text>'
    body += f'<text x="175" y="102" font-size="13" fill="{BLUE}">only the past</text>'
    body += _arrow(95, 56, 95, 38, INK) + f'<circle cx="95" cy="28" r="8" fill="{ORANGE}"/>'
    body += f'<text x="110" y="33" font-size="13" fill="{ORANGE}">next token, appended</text>'
    return _svg(body, "Decoder-only: one causal stack that writes one token at a time")


def seq2seq() -> str:
    body = _tokens(20, 150, 4, "") + _box(10, 60, 110, 60, "encoder", BLUE) + _box(175, 60, 115, 60, "decoder", GREEN)
    body += "".join(_arrow(20 + 22 * i, 142, 20 + 22 * i, 124, INK) for i in range(4))
    body += _arrow(122, 90, 172, 90, ORANGE, dashed=True)
    body += f'<text x="124" y="80" font-size="12" fill="{ORANGE}">cross-</text>'
    body += f'<text x="124" y="112" font-size="12" fill="{ORANGE}">attention</text>'
    body += f'<text x="10" y="30" font-size="13" fill="{INK}">reads the input once</text>'
    body += _arrow(232, 56, 232, 38, INK) + f'<circle cx="232" cy="28" r="8" fill="{GREEN}"/>'
    body += f'<text x="180" y="165" font-size="13" fill="{INK}">writes token by token</text>'
    return _svg(body, "Encoder-decoder: the encoder reads the input once, the decoder writes while cross-attending")


def moe() -> str:
    body = _tokens(30, 150, 1, "a token") + _box(10, 95, 90, 36, "router", ORANGE)
    body += _arrow(30, 142, 30, 133, INK)
    experts = [(130 + 40 * i, 20 + 0 * i) for i in range(4)]
    for i, (x, _y) in enumerate(experts):
        chosen = i in (1, 3)
        body += _box(x, 40, 34, 34, f"E{i}", GREEN if chosen else GREY)
        body += _arrow(100, 110, x + 17, 76, GREEN if chosen else GREY, dashed=not chosen)
    body += f'<text x="120" y="150" font-size="13" fill="{INK}">all experts in memory,</text>'
    body += f'<text x="120" y="166" font-size="13" fill="{GREEN}">each token uses k of them</text>'
    return _svg(body, "Mixture of Experts: a router sends each token to a few expert feed-forward networks")


PICTURES = {"encoder": encoder, "decoder": decoder, "seq2seq": seq2seq, "moe": moe}


def picture(family_key: str) -> str | None:
    """The family's schematic as an SVG string, None for a family without one."""
    draw = PICTURES.get(family_key)
    return draw() if draw else None
