namespace DiffusionFunctional.Core.Weighting

open System

/// Settings of the Nash-MTL solver.
type NashOptions =
    { /// Stop when max_i |alpha_i (G alpha)_i - 1| falls below this (1e-10 by default).
      Tolerance: float
      /// Newton iterations per stage before giving up (100 by default; typical solves take 5 to 25 in all).
      MaxIterations: int
      /// Ridge added to the diagonal of the normalised G when no exact solution exists (1e-4 by default, which bounds alpha by about 100).
      Ridge: float }

/// Nash-MTL's bargaining solution for one Gram matrix.
type NashResult =
    { /// alpha > 0 with alpha_i ((G / |G|_F + ridge I) alpha)_i = 1, solved exactly on the normalised G. The authors'
      /// released code solves alpha_i (G alpha)_i = 1 on the raw G approximately: the same direction, another scale.
      Alpha: float[]
      /// alpha / k: the weights on the raw per-cluster gradients (and losses), so the trainer
      /// backpropagates sum_i alpha_i L_i / k (ANT section 4.2; docs/weightings.md), i.e. updates with sum_j Weights[j] g_j.
      Weights: float[]
      /// |G|_F, the Frobenius norm G was divided by.
      NormalisationFactor: float
      /// Ridge actually added to the normalised G: 0 unless the hull of the gradients (almost) contains 0.
      RidgeUsed: float
      /// Newton iterations taken, over all stages.
      Iterations: int
      /// max_i |alpha_i (G alpha)_i - 1| at the returned alpha (for the ridged matrix when RidgeUsed > 0).
      Residual: float
      /// Residual <= Tolerance, or <= the rounding floor 64 eps max_i alpha_i sum_j |G_ij| alpha_j when that
      /// is larger (only for nearly degenerate G, where alpha is large and G alpha cancels).
      Converged: bool }

/// Nash-MTL (Navon et al. 2022) solved exactly. alpha_i (G alpha)_i = 1 with alpha > 0 is the stationarity
/// condition G alpha = 1 / alpha of f(alpha) = alpha' G alpha / 2 - sum_i log alpha_i, whose Hessian
/// G + diag(1 / alpha^2) is positive definite for every alpha > 0 even when G is only semi-definite; so
/// damped Newton with a positivity-keeping line search converges globally, then quadratically.
/// f has a minimiser iff min over the simplex of w' G w > 0 (then f >= m (1'alpha)^2 / 2 - sum log alpha
/// is coercive); when the hull of the gradients contains 0 (a zero gradient, two opposite gradients)
/// no positive solution exists, and the solver adds a small ridge and says so in `RidgeUsed`.
module NashMtl =

    /// Tolerance 1e-10, 100 iterations, ridge 1e-4.
    let defaultOptions = { Tolerance = 1e-10; MaxIterations = 100; Ridge = 1e-4 }

    let private residual (g: float[,]) (alpha: float[]) =
        let ga = DenseLinearAlgebra.multiply g alpha
        Array.fold2 (fun acc a x -> max acc (abs (a * x - 1.0))) 0.0 alpha ga

    // The smallest residual double precision can certify at alpha: rounding alpha_j by one ulp moves
    // alpha_i (G alpha)_i by about eps alpha_i sum_j |G_ij| alpha_j, which is large only when G is nearly
    // degenerate (alpha large, heavy cancellation in G alpha).
    let private roundingFloor (g: float[,]) (alpha: float[]) =
        let k = alpha.Length
        let mutable worst = 0.0
        for i in 0 .. k - 1 do
            let mutable s = 0.0
            for j in 0 .. k - 1 do s <- s + abs g.[i, j] * alpha.[j]
            worst <- max worst (alpha.[i] * s)
        64.0 * 2.220446049250313e-16 * worst

    // A bound on the rounding error of `objective` at alpha.
    let private objectiveNoise (g: float[,]) (alpha: float[]) =
        let k = alpha.Length
        let mutable s = 0.0
        for i in 0 .. k - 1 do
            s <- s + abs (log alpha.[i])
            for j in 0 .. k - 1 do s <- s + 0.5 * abs g.[i, j] * alpha.[i] * alpha.[j]
        64.0 * 2.220446049250313e-16 * (1.0 + s)

    let private objective (g: float[,]) (alpha: float[]) =
        if alpha |> Array.exists (fun a -> not (a > 0.0)) then Double.PositiveInfinity
        else 0.5 * DenseLinearAlgebra.quadraticForm g alpha - Array.sumBy log alpha

    // The start for a matrix: 1 / sqrt(G_ii), scaled by the t with t^2 (a' G a) = k that minimises f on the ray.
    let private start (g: float[,]) =
        let k = Array2D.length1 g
        let a = Array.init k (fun i -> if g.[i, i] > 0.0 then 1.0 / sqrt g.[i, i] else 1.0)
        let scale = sqrt (float k / max 1e-300 (DenseLinearAlgebra.quadraticForm g a))
        Array.map (fun x -> x * scale) a

    let private withRidge (g: float[,]) (ridge: float) =
        Array2D.init (Array2D.length1 g) (Array2D.length2 g) (fun i j -> if i = j then g.[i, j] + ridge else g.[i, j])

    // Damped Newton on f from `initial` until the residual is below `tolerance` (or the rounding floor);
    // returns alpha, iterations, residual, converged.
    let private newton (tolerance: float) (maxIterations: int) (g: float[,]) (initial: float[]) =
        let k = Array2D.length1 g
        let mutable alpha = Array.copy initial
        let mutable iterations = 0
        let mutable r = residual g alpha
        let mutable stalled = false
        while r > max tolerance (roundingFloor g alpha) && iterations < maxIterations && not stalled do
            iterations <- iterations + 1
            let ga = DenseLinearAlgebra.multiply g alpha
            let gradient = Array.init k (fun i -> ga.[i] - 1.0 / alpha.[i])
            let hessian = Array2D.init k k (fun i j -> if i = j then g.[i, j] + 1.0 / (alpha.[i] * alpha.[i]) else g.[i, j])
            match DenseLinearAlgebra.tryCholesky hessian with
            | None -> stalled <- true
            | Some l ->
                let step = DenseLinearAlgebra.choleskySolve l gradient |> Array.map (fun x -> -x)
                // Largest step keeping alpha > 0 (stop 1% short of the boundary).
                let mutable t = 1.0
                for i in 0 .. k - 1 do
                    if step.[i] < 0.0 then t <- min t (-0.99 * alpha.[i] / step.[i])
                let slope = Array.fold2 (fun acc a b -> acc + a * b) 0.0 gradient step
                let f0 = objective g alpha
                let trial t = Array.init k (fun i -> alpha.[i] + t * step.[i])
                // Armijo backtracking on f while its predicted decrease is above f's own rounding noise (the
                // quadratic term cancels heavily when alpha is large); below it, Newton is in its quadratic
                // phase and steps are accepted when they reduce the residual instead.
                let tMax = t
                let armijo = -slope > objectiveNoise g alpha
                if armijo then
                    while t > 1e-12 && objective g (trial t) > f0 + 1e-4 * t * slope do
                        t <- 0.5 * t
                if armijo && t > 1e-12 then
                    alpha <- trial t
                    r <- residual g alpha
                else
                    t <- tMax
                    let mutable rNext = residual g (trial t)
                    while t > 1e-6 * tMax && rNext >= r do
                        t <- 0.5 * t
                        rNext <- residual g (trial t)
                    if rNext >= r then stalled <- true
                    else
                        alpha <- trial t
                        r <- rNext
        alpha, iterations, r, r <= max tolerance (roundingFloor g alpha)

    /// Nash-MTL weights with explicit options. G is divided by its Frobenius norm first (our choice: it fixes the
    /// scale of alpha, which the raw G would tie to the gradients' size). Throws ArgumentException for a bad matrix or
    /// bad options.
    /// Example: for G = diag(4, 1), `(NashMtl.solveWith NashMtl.defaultOptions g).Alpha` solves
    /// alpha_i^2 G_ii / |G|_F = 1, i.e. alpha = [| sqrt(sqrt 17 / 4); sqrt(sqrt 17) |].
    let solveWith (options: NashOptions) (gram: float[,]) : NashResult =
        if not (options.Tolerance > 0.0) then invalidArg "options" (sprintf "Tolerance must be positive, got %g" options.Tolerance)
        if options.MaxIterations < 1 then invalidArg "options" (sprintf "MaxIterations must be at least 1, got %d" options.MaxIterations)
        if not (options.Ridge > 0.0) || Double.IsInfinity options.Ridge then
            invalidArg "options" (sprintf "Ridge must be positive and finite, got %g" options.Ridge)
        let g = GramMatrix.validatePositiveSemidefinite gram
        let k = Array2D.length1 g
        let norm = GramMatrix.frobeniusNorm g
        let normalised = if norm > 0.0 then Array2D.map (fun x -> x / norm) g else g
        // A positive solution exists iff the min-norm point of the hull is not 0 (see the module doc).
        let hullDistance = DenseLinearAlgebra.quadraticForm normalised (fst (SimplexQp.wolfe normalised))
        // Below 1e-9 the exact alpha would exceed about 3e4 / sqrt k: treat the hull as containing 0.
        let ridge = if hullDistance > 1e-9 then 0.0 else options.Ridge
        // Damped Newton needs O(f(start) - f*) steps, about sum log alpha*, which is large when the hull
        // nearly touches 0 (alpha* large). Path-following on a ridge mu (G + mu I with mu = 0.1, 0.01, ...
        // down to a thousandth of the hull distance, each solved loosely from the last) keeps every stage
        // a few quadratic steps; well-separated hulls (distance >= 1e-2) go straight to the final solve.
        let target = ridge
        let floorDistance = hullDistance + ridge / float k
        let mutable alpha = [||]
        let mutable iterations = 0
        let mutable mu = if floorDistance < 1e-2 then 0.1 else 0.0
        while mu > 1e-3 * floorDistance do
            let system = withRidge normalised (target + mu)
            let a, n, _, _ = newton 1e-3 options.MaxIterations system (if alpha.Length = 0 then start system else alpha)
            alpha <- a
            iterations <- iterations + n
            mu <- mu / 10.0
        if alpha.Length = 0 then alpha <- start (withRidge normalised target)
        let a, n, r, converged = newton options.Tolerance options.MaxIterations (withRidge normalised target) alpha
        let alpha, iterations = a, iterations + n
        { Alpha = alpha
          Weights = Array.map (fun a -> a / float k) alpha
          NormalisationFactor = norm
          RidgeUsed = ridge
          Iterations = iterations
          Residual = r
          Converged = converged }

    /// Nash-MTL weights with `defaultOptions`. The trainer backpropagates sum_i Alpha[i] L_i / k (equivalently
    /// updates with sum_j Weights[j] g_j), clips the gradient norm to 1.0 and recomputes every 25 steps.
    /// Example: `(NashMtl.solve (array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])).Alpha` = [| 2^(1/4); 2^(1/4) |] (|I|_F = sqrt 2).
    let solve (gram: float[,]) : NashResult = solveWith defaultOptions gram
