"""Chapter 4: loss functions, numerical differentiation, gradients and gradient descent.

Learning means finding the weights that make a loss small. The book's steps:

1. losses: mean squared error and cross-entropy on its 10-class example (the right
   class scored 0.6 gives MSE 0.0975 and CE 0.5108; the wrong class, 0.5975 and 2.3026);
2. numerical differentiation by central differences (h = 1e-4; h = 1e-50 rounds to 0);
3. the gradient of f(x0, x1) = x0**2 + x1**2, which points away from the minimum at
   every point -- its negative is drawn as a field of arrows;
4. gradient descent from (-3, 4): lr = 0.1 reaches (0, 0); lr = 10 blows up; lr = 1e-10
   barely moves;
5. the gradient of a tiny network's loss with respect to its 2x3 weight matrix
   (``simpleNet``, with the weights the study notes print).

    python examples/05_gradients.py [--backend NAME] [--quick] [--out DIR]
"""
from __future__ import annotations

import numpy as np

import _common as C
from _common import xn
from xpnet import functions as F

T = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
Y_GOOD = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
Y_BAD = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
# the study notes' simpleNet weights (drawn with np.random.randn there)
SIMPLE_NET_W = [[-0.73546853, -0.90485202, -0.22409225],
                [0.19518637, 0.10183601, 1.89255414]]


def arr(values):
    """A float64 array of the active backend."""
    return xn.backend.asarray(np.asarray(values, dtype=np.float64))


def show(a):
    return np.array2string(xn.to_numpy(a), precision=8)


def function_1(x):
    return 0.01 * x ** 2 + 0.1 * x


def losses(xp):
    print("\n1. loss functions (the right answer is class 2)")
    t = arr(T)
    for label, y in (("class 2 scored 0.6", Y_GOOD), ("class 7 scored 0.6", Y_BAD)):
        y = arr(y)
        mse = float(F.mean_squared_error(y, t, xp=xp))
        ce = float(F.cross_entropy_error(y, t, xp=xp))
        print(f"  {label}: mean_squared_error = {mse!r}, cross_entropy_error = {ce!r}")


def derivatives(xp):
    print("\n2. numerical differentiation, f(x) = 0.01 x^2 + 0.1 x (exact f'(x) = 0.02 x + 0.1)")
    for x in (5.0, 10.0):
        d = F.numerical_diff(function_1, x)
        print(f"  central difference at x = {x:g}: {d!r}   (exact {0.02 * x + 0.1:g})")
    h = 1e-50
    print(f"  forward difference with h = 1e-50 at x = 5: {(function_1(5.0 + h) - function_1(5.0)) / h!r}"
          "   (5 + 1e-50 == 5 in float64: rounding error)")
    d0 = F.numerical_diff(lambda x0: x0 * x0 + 4.0 ** 2.0, 3.0)
    d1 = F.numerical_diff(lambda x1: 3.0 ** 2.0 + x1 * x1, 4.0)
    print(f"  partial derivatives of x0^2 + x1^2 at (3, 4): df/dx0 = {d0!r}, df/dx1 = {d1!r}")


def function_2(x):
    """x0**2 + x1**2, summed over every row when ``x`` holds many points."""
    return xn.get_namespace().sum(x ** 2)


def gradients(xp, quick, out):
    print("\n3. gradients of f(x0, x1) = x0^2 + x1^2")
    for point in ([3.0, 4.0], [0.0, 2.0], [3.0, 0.0]):
        g = F.numerical_gradient(function_2, arr(point))
        print(f"  numerical_gradient at {tuple(point)} = {show(g)}")
    step = 0.5 if quick else 0.25
    ticks = np.arange(-2.0, 2.5, step)
    X0, X1 = np.meshgrid(ticks, ticks)
    points = arr(np.stack([X0.ravel(), X1.ravel()], axis=1))
    # f sums over the points, so d f / d point_i is the gradient at point_i
    grid_grad = xn.to_numpy(F.numerical_gradient(function_2, points))
    print(f"  the gradient at {points.shape[0]} grid points; the arrows (minus the gradient) all point to (0, 0)")
    plt = C.pyplot()
    if plt is None:
        C.no_plot_note()
        return
    fig, ax = plt.subplots(figsize=(5, 5))
    host = xn.to_numpy(points)
    ax.quiver(host[:, 0], host[:, 1], -grid_grad[:, 0], -grid_grad[:, 1], angles="xy", color="#666666")
    ax.set(xlim=(-2, 2), ylim=(-2, 2), xlabel="x0", ylabel="x1",
           title="-grad f for f = x0^2 + x1^2")
    ax.grid(True)
    C.savefig(fig, out, "05_gradient_field.png")


def descent(xp, out):
    print("\n4. gradient descent on x0^2 + x1^2 from (-3, 4), 100 steps")
    for lr, note in ((0.1, "reaches the minimum"), (10.0, "too large: diverges"),
                     (1e-10, "too small: hardly moves")):
        x = F.gradient_descent(function_2, arr([-3.0, 4.0]), lr=lr, step_num=100)
        print(f"  lr = {lr:g}: {show(x)}   {note}")
    path, x = [], arr([-3.0, 4.0])
    for _ in range(20):
        path.append(xn.to_numpy(x))
        x = x - 0.1 * F.numerical_gradient(function_2, x)
    plt = C.pyplot()
    if plt is None:
        return
    path = np.array(path)
    fig, ax = plt.subplots(figsize=(5, 5))
    for r in (1, 2, 3, 4, 5):
        ax.add_patch(plt.Circle((0, 0), r, fill=False, ls=":", color="0.7"))
    ax.plot(path[:, 0], path[:, 1], "o-", ms=4)
    ax.set(xlim=(-3.5, 3.5), ylim=(-4.5, 4.5), aspect="equal", xlabel="x0", ylabel="x1",
           title="gradient descent, lr = 0.1, first 20 steps")
    C.savefig(fig, out, "05_gradient_descent.png")


def simple_net(xp):
    print("\n5. the gradient of a network's loss: simpleNet, W of shape (2, 3)")
    W = arr(SIMPLE_NET_W)
    x, t = arr([0.6, 0.9]), arr([0.0, 0.0, 1.0])

    def loss(w):
        return F.cross_entropy_error(F.softmax(x @ w, xp=xp), t, xp=xp)

    p = x @ W
    print(f"  W = {show(W)}")
    print(f"  predict(x) = {show(p)}, argmax = {int(xp.argmax(p))}")
    exact_loss = -float(xp.sum(t * F.log_softmax(p, xp=xp)))
    print(f"  loss = {float(loss(W))!r} with the book's 1e-7 inside the log; "
          f"{exact_loss!r} without it (the notes print 0.25645618872166714)")
    dW = F.numerical_gradient(loss, W)
    print(f"  dW (numerical) =\n{show(dW)}")
    exact = xp.reshape(x, (2, 1)) @ xp.reshape(F.softmax(p, xp=xp) - t, (1, 3))
    print(f"  dW (analytic, x^T (softmax - t)) =\n{show(exact)}")
    print(f"  largest difference: {float(xp.max(xp.abs(dW - exact))):.1e}")


def main(argv=None):
    args = C.parser(__doc__).parse_args(argv)
    with C.session(args) as backend:
        xp = backend.xp
        losses(xp)
        derivatives(xp)
        gradients(xp, args.quick, args.out)
        descent(xp, args.out)
        simple_net(xp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
