namespace DiffusionFunctional.Core.Weighting

open System

/// PCGrad's projected gradients expressed over the original ones.
type PcGradResult =
    { /// k x k coefficients: the projected g_i' = sum_j Coefficients[i, j] g_j.
      Coefficients: float[,]
      /// Column sums of Coefficients: the update sum_i g_i' = sum_j Weights[j] g_j.
      Weights: float[] }

/// IMTL-G's weights.
type ImtlResult =
    { /// Weights summing to 1: update with sum_j Weights[j] g_j.
      Weights: float[]
      /// True when the equal-projection system was singular (e.g. identical gradients) and the
      /// minimum-norm least-squares solution was used instead of an exact solve.
      LeastSquares: bool }

/// PCGrad (Yu et al. 2020) exactly as ANT section 4.2; docs/weightings.md: for each i, over a given order of j != i,
/// if g_i' . g_j < 0 then g_i' -= (g_i' . g_j / |g_j|^2) g_j, always projecting against the ORIGINAL g_j;
/// the update is sum_i g_i'. Every dot product is a combination of Gram entries, so only G is needed.
module PcGrad =

    let private checkOrders (k: int) (orders: int[][]) =
        if isNull orders then nullArg "orders"
        if orders.Length <> k then invalidArg "orders" (sprintf "there must be one order per task (%d), got %d" k orders.Length)
        orders |> Array.iteri (fun i order ->
            if isNull order then invalidArg "orders" (sprintf "orders[%d] is null" i)
            let expected = Array.init k id |> Array.filter (fun j -> j <> i)
            let others = order |> Array.filter (fun j -> j <> i)
            let sameSet = Array.sort others = expected
            let validLength = order.Length = k - 1 || (order.Length = k && Array.contains i order)
            if not (sameSet && validLength) then
                invalidArg "orders" (sprintf "orders[%d] must be a permutation of the other %d tasks (task %d itself may appear and is skipped), got [%s]"
                                        i (k - 1) i (String.Join(", ", order))))

    /// A random order of the other tasks for each task (Fisher-Yates), to pass to `solve`.
    /// Example: `PcGrad.randomOrders (System.Random 1) 3` is e.g. [| [| 2; 1 |]; [| 0; 2 |]; [| 1; 0 |] |].
    let randomOrders (random: Random) (k: int) : int[][] =
        if isNull random then nullArg "random"
        if k < 1 then invalidArg "k" (sprintf "there must be at least one task, got %d" k)
        Array.init k (fun i ->
            let order = Array.init k id |> Array.filter (fun j -> j <> i)
            for p in order.Length - 1 .. -1 .. 1 do
                let q = random.Next(p + 1)
                let t = order.[p]
                order.[p] <- order.[q]
                order.[q] <- t
            order)

    /// PCGrad's coefficients and update weights for the given orders (orders[i] lists the tasks g_i is
    /// projected against, in turn; task i itself may appear and is skipped). Pure and deterministic.
    /// A zero gradient is never projected against (its dot products are 0, never negative).
    /// Example: for g_1 = (1, 0), g_2 = (-1, 1), G = [[1, -1], [-1, 2]]:
    /// `(PcGrad.solve g [| [| 1 |]; [| 0 |] |]).Weights` = [| 2.0; 1.5 |] (g_1' = g_1 + g_2 / 2, g_2' = g_1 + g_2).
    let solve (gram: float[,]) (orders: int[][]) : PcGradResult =
        let g = GramMatrix.validate gram
        let k = Array2D.length1 g
        checkOrders k orders
        let coefficients = Array2D.init k k (fun i j -> if i = j then 1.0 else 0.0)
        for i in 0 .. k - 1 do
            for j in orders.[i] do
                if j <> i && g.[j, j] > 0.0 then
                    let mutable dot = 0.0
                    for l in 0 .. k - 1 do dot <- dot + coefficients.[i, l] * g.[l, j]
                    if dot < 0.0 then coefficients.[i, j] <- coefficients.[i, j] - dot / g.[j, j]
        { Coefficients = coefficients
          Weights = Array.init k (fun j -> Seq.sum (seq { for i in 0 .. k - 1 -> coefficients.[i, j] })) }

/// IMTL-G (Liu et al. 2021): weights alpha with sum alpha = 1 such that the update g = sum_j alpha_j g_j
/// has equal projections g . u_i on every unit gradient u_i = g_i / |g_i|. With n_i = |g_i| = sqrt(G_ii),
/// g . u_i = (G alpha)_i / n_i, so the conditions are linear in alpha: (G alpha)_0 / n_0 - (G alpha)_i / n_i = 0
/// for i >= 1 and sum alpha = 1 (the same system as the paper's alpha = g_1 U'(D U')^-1, written on G).
/// When G is invertible this is alpha proportional to G^-1 n.
module ImtlG =

    /// IMTL-G weights from the Gram matrix. Zero gradients (n_i = 0, no unit vector) get weight 0 and are
    /// left out of the conditions; when every gradient is zero the weights are uniform. A singular system
    /// (non-unique or no exact solution) is solved in the minimum-norm least-squares sense (`LeastSquares`).
    /// Example: for G = diag(4, 1) (orthogonal g_1 of norm 2, g_2 of norm 1), `(ImtlG.solve g).Weights`
    /// = [| 1/3; 2/3 |]: the update (2/3, 2/3) projects to 2/3 on both unit gradients.
    let solve (gram: float[,]) : ImtlResult =
        let g = GramMatrix.validate gram
        let k = Array2D.length1 g
        let largest = Seq.max (seq { for i in 0 .. k - 1 -> g.[i, i] })
        let active = Array.init k id |> Array.filter (fun i -> g.[i, i] > 1e-24 * largest && g.[i, i] > 0.0)
        if active.Length = 0 then { Weights = Array.create k (1.0 / float k); LeastSquares = false }
        else
            let m = active.Length
            let norm i = sqrt g.[active.[i], active.[i]]
            // Row 0: sum alpha = 1. Row i >= 1: projection on u_0 minus projection on u_i, divided by the
            // largest norm so that all rows have comparable scale.
            let scale = sqrt largest
            let system = Array2D.init m m (fun r c ->
                if r = 0 then 1.0
                else (g.[active.[0], active.[c]] / norm 0 - g.[active.[r], active.[c]] / norm r) / scale)
            let rhs = Array.init m (fun r -> if r = 0 then 1.0 else 0.0)
            let solution, leastSquares =
                match DenseLinearAlgebra.trySolve 1e-10 system rhs with
                | Some x -> x, false
                | None -> DenseLinearAlgebra.minNormLeastSquares 1e-10 system rhs, true
            let weights = Array.zeroCreate k
            active |> Array.iteri (fun r i -> weights.[i] <- solution.[r])
            { Weights = weights; LeastSquares = leastSquares }
