"""Chapter 5: the computational graph of the shopping example, forward and backward.

Buy 2 apples at 100 each and 3 oranges at 150 each, with 10 % tax. Each node of the
graph is a layer: ``MulLayer`` (x * y) and ``AddLayer`` (x + y). The forward pass gives
the price, 715. The backward pass, started with d(price)/d(price) = 1, gives the
derivative of the price with respect to every input: a multiplication node passes back
``dout`` times the *other* input, an addition node passes ``dout`` through unchanged.

    d price / d apple       = 2.2   (tax * number of apples)
    d price / d apple_num   = 110   (tax * apple price)
    d price / d orange      = 3.3
    d price / d orange_num  = 165
    d price / d tax         = 650   (the price before tax)

With apples only, the price is 220 and d price / d tax = 200. The inputs here are 0-d
arrays of the chosen backend; the same layers work on Python numbers.

    python examples/07_computational_graph.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import _common as C
from _common import xn
from xpnet.layers import AddLayer, MulLayer


def scalar(v):
    return xn.backend.asarray(float(v), dtype="float64")


def num(a):
    """A 0-d array as a short number (the book prints 2.2 and 3.3, not 3.3000000000000003)."""
    return f"{float(a):.10g}"


def apples(apple, apple_num, tax):
    mul_apple, mul_tax = MulLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    price = mul_tax.forward(apple_price, tax)
    dapple_price, dtax = mul_tax.backward(scalar(1))
    dapple, dapple_num = mul_apple.backward(dapple_price)
    print("\napples only: 2 apples at 100, tax 1.1")
    print(f"  price: {num(price)}")
    print(f"  dApple: {num(dapple)}  dApple_num: {num(dapple_num)}  dTax: {num(dtax)}")


def apples_and_oranges(apple, apple_num, orange, orange_num, tax):
    mul_apple, mul_orange, add, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    # forward: (1) (2) (3) (4)
    apple_price = mul_apple.forward(apple, apple_num)
    orange_price = mul_orange.forward(orange, orange_num)
    all_price = add.forward(apple_price, orange_price)
    price = mul_tax.forward(all_price, tax)
    # backward, in the reverse order: (4) (3) (2) (1)
    dall_price, dtax = mul_tax.backward(scalar(1))
    dapple_price, dorange_price = add.backward(dall_price)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    print("\napples and oranges: 2 apples at 100, 3 oranges at 150, tax 1.1")
    print(f"  forward: apple_price {num(apple_price)}, orange_price {num(orange_price)}, "
          f"all_price {num(all_price)}")
    print(f"  price: {num(price)}")
    print(f"  dApple: {num(dapple)}  dApple_num: {num(dapple_num)}")
    print(f"  dOrange: {num(dorange)}  dOrange_num: {num(dorange_num)}")
    print(f"  dTax: {num(dtax)}")
    return {"price": price, "dapple": dapple, "dapple_num": dapple_num, "dorange": dorange,
            "dorange_num": dorange_num, "dtax": dtax, "apple_price": apple_price,
            "orange_price": orange_price, "all_price": all_price}


def plot(values, out):
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, ax = plt.subplots(figsize=(8, 3.6))
    nodes = {"apple 100": (0, 2), "apple_num 2": (0, 1.3), "orange 150": (0, 0.7),
             "orange_num 3": (0, 0), "tax 1.1": (2, -0.6),
             "x": (1, 1.65), "x ": (1, 0.35), "+": (2, 1), "x  ": (3, 1)}
    for name, (x, y) in nodes.items():
        round_node = name.strip() in ("x", "+")
        ax.text(x, y, name.strip(), ha="center", va="center",
                bbox=dict(boxstyle="circle" if round_node else "round", fc="white"))
    edges = [("apple 100", "x", "dApple", values["dapple"]),
             ("apple_num 2", "x", "dApple_num", values["dapple_num"]),
             ("orange 150", "x ", "dOrange", values["dorange"]),
             ("orange_num 3", "x ", "dOrange_num", values["dorange_num"]),
             ("x", "+", "", values["apple_price"]), ("x ", "+", "", values["orange_price"]),
             ("+", "x  ", "", values["all_price"]), ("tax 1.1", "x  ", "dTax", values["dtax"])]
    for a, b, dname, v in edges:
        (x0, y0), (x1, y1) = nodes[a], nodes[b]
        ax.annotate("", (x1 - 0.12, y1), (x0 + 0.25, y0), arrowprops=dict(arrowstyle="->"))
        label = f"{dname} = {num(v)}" if dname else num(v)
        ax.text(0.4 * x0 + 0.6 * x1, 0.4 * y0 + 0.6 * y1, label, fontsize=7, ha="center",
                va="center", color="C3" if dname else "C0",
                bbox=dict(fc="white", ec="none", pad=0.5))
    ax.text(3.6, 1, f"price\n{num(values['price'])}", ha="center", va="center")
    ax.annotate("", (3.35, 1), (3.12, 1), arrowprops=dict(arrowstyle="->"))
    ax.set(xlim=(-0.6, 4), ylim=(-1, 2.4))
    ax.axis("off")
    ax.set_title("forward values (blue) and derivatives of the price (red)")
    C.savefig(fig, out, "07_computational_graph.png")


def main(argv=None):
    args = C.parser(__doc__).parse_args(argv)
    with C.session(args):
        apples(scalar(100), scalar(2), scalar(1.1))
        values = apples_and_oranges(scalar(100), scalar(2), scalar(150), scalar(3), scalar(1.1))
        plot(values, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
